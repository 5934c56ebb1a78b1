"""Configuration from the environment (prefix PBOX_) and, optionally, a TOML file named by PBOX_CONFIG."""

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PBOX_", extra="ignore")

    node_role: Literal["ministry", "province", "city"] = "province"
    region_code: str = Field(default="320000", pattern=r"^\d{6}$")

    database_url: str = "postgresql+psycopg://pbox@127.0.0.1:5432/pbox"
    db_pool_size: int = 10
    db_max_overflow: int = 10

    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: str = "pbox"
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "pbox-attachments"
    s3_region: str = "us-east-1"

    # Signs access tokens and derives per-record query codes; rotating it invalidates both.
    secret_key: SecretStr = SecretStr("")
    token_ttl_seconds: int = 2 * 3600
    owner_token_ttl_seconds: int = 30 * 60
    auth_fail_limit: int = 5
    auth_fail_window_seconds: int = 15 * 60

    # Personal-data field key (64+ hex digits), kept out of the database: a root-only file in
    # production, the variable in tests. The suite picks field encryption and audit-log hashing.
    field_key: SecretStr = SecretStr("")
    field_key_file: Path | None = None
    crypto_suite: Literal["standard", "sm"] = "standard"

    # Staff (regulators and administrators): GB/T 22239 8.1.4.1 login-failure and session handling.
    staff_lockout_threshold: int = 5
    staff_lockout_seconds: int = 30 * 60
    staff_idle_timeout_seconds: int = 15 * 60
    staff_session_max_seconds: int = 8 * 3600
    staff_password_min_length: int = 12
    staff_password_max_age_days: int = 90
    # Longest an owner may authorize an enterprise to read a car's history.
    grant_max_days: int = 30

    max_body_bytes: int = 4 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    log_level: str = "INFO"
    worker_interval_seconds: int = 3600
    # app-worker: how often it re-verifies the whole audit-log hash chain, and where it serves its
    # own metrics (pbox_audit_chain_*) for Prometheus; 0 turns that listener off.
    audit_verify_interval_seconds: int = 600
    worker_metrics_port: int = 9465

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path := os.environ.get("PBOX_CONFIG"):
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


@cache
def get_settings() -> Settings:
    return Settings()
