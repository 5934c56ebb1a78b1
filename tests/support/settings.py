"""The app's settings on a throwaway PostgreSQL and MinIO (tests, the bench): fresh keys each time."""

import secrets
from typing import Any

from app.settings import Settings
from tests.support.minio import MinioServer


def local_settings(database_url: str, minio: MinioServer, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        s3_endpoint=minio.endpoint,
        s3_access_key=minio.access_key,
        s3_secret_key=minio.secret_key,
        secret_key=secrets.token_hex(32),
        field_key=secrets.token_hex(32),
        **extra,
    )
