"""Settings from environment variables (12-factor), with defaults that make `cse demo` work on a bare machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def normalize_database_url(url: str) -> str:
    """Point plain `postgres://` URLs (as Heroku-style platforms hand them out) at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".cse-data")
    database_url: str = ""
    redis_url: str | None = None
    health_config: Path | None = None
    playbooks: Path | None = None
    writeback_score_step: float = 2.0
    salesforce_username: str | None = None
    salesforce_password: str | None = field(default=None, repr=False)
    salesforce_security_token: str | None = field(default=None, repr=False)
    salesforce_instance_url: str | None = None
    salesforce_session_id: str | None = field(default=None, repr=False)
    salesforce_consumer_key: str | None = None
    salesforce_private_key: str | None = field(default=None, repr=False)
    salesforce_private_key_file: str | None = None
    salesforce_domain: str | None = None
    salesforce_version: str | None = None
    salesforce_base_url: str | None = None
    hubspot_base_url: str | None = None
    intercom_base_url: str | None = None
    hubspot_client_secret: str | None = field(default=None, repr=False)
    hubspot_portal_id: str | None = None
    intercom_client_secret: str | None = field(default=None, repr=False)
    intercom_app_id: str | None = None
    salesforce_org_id: str | None = None
    salesforce_callout_secret: str | None = field(default=None, repr=False)
    public_url: str | None = None
    webhook_max_bytes: int = 1_048_576
    webhook_coalesce_seconds: float = 0.0
    webhook_retention_days: int = 30
    admin_user: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    hubspot_access_token: str | None = field(default=None, repr=False)
    intercom_access_token: str | None = field(default=None, repr=False)
    card_programs: tuple[str, ...] = ("onboarding", "adoption", "renewal", "expansion", "advocacy")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("CSE_DATA_DIR", str(Path.cwd() / ".cse-data")))
        database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'cse.db'}"
        health_config = env.get("CSE_HEALTH_CONFIG")
        playbooks = env.get("CSE_PLAYBOOKS")
        return cls(
            data_dir=data_dir,
            database_url=normalize_database_url(database_url),
            redis_url=env.get("REDIS_URL") or None,
            health_config=Path(health_config) if health_config else None,
            playbooks=Path(playbooks) if playbooks else None,
            writeback_score_step=float(env.get("CSE_WRITEBACK_SCORE_STEP", "2.0")),
            salesforce_username=env.get("SALESFORCE_USERNAME"),
            salesforce_password=env.get("SALESFORCE_PASSWORD"),
            salesforce_security_token=env.get("SALESFORCE_SECURITY_TOKEN"),
            salesforce_instance_url=env.get("SALESFORCE_INSTANCE_URL"),
            salesforce_session_id=env.get("SALESFORCE_SESSION_ID"),
            salesforce_consumer_key=env.get("SALESFORCE_CONSUMER_KEY"),
            salesforce_private_key=env.get("SALESFORCE_PRIVATE_KEY"),
            salesforce_private_key_file=env.get("SALESFORCE_PRIVATE_KEY_FILE"),
            salesforce_domain=env.get("SALESFORCE_DOMAIN"),
            salesforce_version=env.get("SALESFORCE_API_VERSION"),
            salesforce_base_url=env.get("SALESFORCE_BASE_URL"),
            hubspot_base_url=env.get("HUBSPOT_BASE_URL"),
            intercom_base_url=env.get("INTERCOM_BASE_URL"),
            hubspot_client_secret=env.get("HUBSPOT_CLIENT_SECRET"),
            hubspot_portal_id=env.get("HUBSPOT_PORTAL_ID"),
            intercom_client_secret=env.get("INTERCOM_CLIENT_SECRET"),
            intercom_app_id=env.get("INTERCOM_APP_ID"),
            salesforce_org_id=env.get("SALESFORCE_ORG_ID"),
            salesforce_callout_secret=env.get("SALESFORCE_CALLOUT_SECRET"),
            public_url=env.get("CSE_PUBLIC_URL"),
            webhook_max_bytes=int(env.get("CSE_WEBHOOK_MAX_BYTES", "1048576")),
            webhook_coalesce_seconds=float(env.get("CSE_WEBHOOK_COALESCE_SECONDS", "0")),
            webhook_retention_days=int(env.get("CSE_WEBHOOK_RETENTION_DAYS", "30")),
            admin_user=env.get("CSE_ADMIN_USER", "admin"),
            admin_password=env.get("CSE_ADMIN_PASSWORD"),
            hubspot_access_token=env.get("HUBSPOT_ACCESS_TOKEN"),
            intercom_access_token=env.get("INTERCOM_ACCESS_TOKEN"),
            card_programs=tuple(p.strip() for p in env.get("CSE_CARD_PROGRAMS", "").split(",") if p.strip())
            or cls.card_programs,
        )

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
