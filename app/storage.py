"""The object store (MinIO, S3 API) that keeps attachments; the database keeps only their metadata."""

import logging

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.settings import Settings

log = logging.getLogger("app.storage")


class ObjectStore:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self._s3 = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
            region_name=settings.s3_region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3},
                connect_timeout=3,
                read_timeout=30,
            ),
        )

    def ensure_bucket(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._s3.create_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes, content_type: str, sha256_hex: str) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata={"sha256": sha256_hex}
        )

    def get(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete_many(self, keys: list[str]) -> None:
        """Best effort, after the database change is committed: a failure is logged (with the key, for
        the operator to remove by hand), not raised. A key already gone is no error."""
        for key in keys:
            try:
                self._s3.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                log.warning("object not deleted", extra={"object_key": key})

    def ping(self) -> bool:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return True
