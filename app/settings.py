"""Settings from environment variables (12-factor), with defaults that make `cse demo` work on a bare machine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TRUE = ("1", "true", "yes", "on")


def normalize_database_url(url: str) -> str:
    """Point plain `postgres://` URLs (as Heroku-style platforms hand them out) at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def mask_url_password(url: str | None) -> str | None:
    """The URL with the password of its user part (postgresql://user:secret@host/db) replaced by ***."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL we can take apart: show nothing of it
        return "***"
    if password is None:
        return url
    user_part, _, host = parts.netloc.rpartition("@")
    user = user_part.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def default_model_key_file(env: Mapping[str, str]) -> Path:
    """The user's config directory, outside any data directory: where `cse train` keeps the model signing key."""
    config_home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(config_home) / "cse" / "model.key"


def default_secret_key_file(env: Mapping[str, str]) -> Path:
    """Where the web app keeps its session-signing key when CSE_SECRET_KEY is unset: beside the model key."""
    return default_model_key_file(env).with_name("web.key")


@dataclass(frozen=True, repr=False)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".cse-data")
    database_url: str = ""
    redis_url: str | None = None
    health_config: Path | None = None
    writeback_score_step: float = 2.0
    score_chunk_accounts: int = 50_000
    score_parts: int = 2
    churn_horizon_days: int = 30
    model_refresh_days: int = 7
    model_workers: int = 2
    warning_precision: float = 0.3
    warning_horizon_days: int = 90
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
    salesforce_outbound_token: str | None = field(default=None, repr=False)
    hubspot_allow_legacy_signatures: bool = False
    public_url: str | None = None
    proxy_hops: int = 0
    webhook_max_bytes: int = 1_048_576
    webhook_coalesce_seconds: float = 0.0
    webhook_retention_days: int = 30
    webhook_dedupe_days: int = 60
    webhook_refusals_per_minute: int = 60
    hubspot_access_token: str | None = field(default=None, repr=False)
    intercom_access_token: str | None = field(default=None, repr=False)
    # Default field mappings: a folder of <vendor>/<name>.yaml (CSE_MAPPINGS_DIR), None for the packaged ones.
    mappings_dir: Path | None = None
    # The whole environment, so a connector added as one package reads its own variables (see value()).
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    model_key: str | None = field(default=None, repr=False)
    model_key_file: Path = field(default_factory=lambda: default_model_key_file(os.environ))
    secret_key: str | None = field(default=None, repr=False)
    secret_key_file: Path = field(default_factory=lambda: default_secret_key_file(os.environ))
    login_attempts_per_minute: int = 10
    card_programs: tuple[str, ...] = ()  # empty: every defined program (app/programs/catalog.offered_programs)
    # Outages: every wait on Redis or the database ends well inside gunicorn's 30 s worker timeout.
    redis_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: int = 5
    db_statement_timeout_seconds: float = 15.0
    store_wait_seconds: float = 5.0  # a webhook answers 503 once the store has not answered for this long
    # Webhook processing: a run's lease (renewed while it runs), retries of failed pulls, the catch-up sweeps.
    webhook_lease_seconds: float = 120.0
    webhook_max_attempts: int = 5
    webhook_retry_seconds: float = 60.0
    webhook_sweep_seconds: int = 60
    sync_interval_seconds: int = 900
    # Programs (app/programs): a folder of <program>.yaml (CSE_PROGRAMS_DIR), None for the packaged ones; the
    # weekly CRM task budget per CSM and the cap on customer messages per account and week across all programs.
    programs_dir: Path | None = None
    task_budget_per_csm: int = 25
    messages_per_week: int = 2
    # Connections that write a large program tick's round side by side on PostgreSQL (app/programs/tick._write).
    program_tick_writers: int = 2
    # Quiet periods (engine/programs/quiet.py): no customer message on these weekdays (`sat,sun`), hours (`20-8`)
    # or dates (`2026-12-24..2026-12-26,2027-01-01`), in the account's timezone (else the default); deferred.
    quiet_weekdays: str = ""
    quiet_hours: str = ""
    quiet_blackouts: str = ""
    default_timezone: str = "UTC"
    # Segment-compatible intake (/v1/track, ...): the write key senders use, and the import mapping whose
    # history.events.types maps event names to activity kinds (a name in mappings/import/ or a path).
    segment_write_key: str | None = field(default=None, repr=False)
    segment_mapping: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("CSE_DATA_DIR", str(Path.cwd() / ".cse-data")))
        database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'cse.db'}"
        health_config = env.get("CSE_HEALTH_CONFIG")
        mappings_dir = env.get("CSE_MAPPINGS_DIR")
        retention_days = int(env.get("CSE_WEBHOOK_RETENTION_DAYS", "30"))
        return cls(
            data_dir=data_dir,
            database_url=normalize_database_url(database_url),
            redis_url=env.get("REDIS_URL") or None,
            health_config=Path(health_config) if health_config else None,
            writeback_score_step=float(env.get("CSE_WRITEBACK_SCORE_STEP", "2.0")),
            score_chunk_accounts=int(env.get("CSE_SCORE_CHUNK_ACCOUNTS", "50000")),
            score_parts=int(env.get("CSE_SCORE_PARTS", "2")),
            churn_horizon_days=int(env.get("CSE_CHURN_HORIZON_DAYS", "30")),
            model_refresh_days=int(env.get("CSE_MODEL_REFRESH_DAYS", "7")),
            model_workers=int(env.get("CSE_MODEL_WORKERS", "2")),
            warning_precision=float(env.get("CSE_EARLY_WARNING_PRECISION", "0.3")),
            warning_horizon_days=int(env.get("CSE_EARLY_WARNING_HORIZON_DAYS", "90")),
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
            salesforce_outbound_token=env.get("SALESFORCE_OUTBOUND_TOKEN") or None,
            hubspot_allow_legacy_signatures=env.get("HUBSPOT_ALLOW_LEGACY_SIGNATURES", "").lower() in TRUE,
            public_url=env.get("CSE_PUBLIC_URL"),
            proxy_hops=int(env.get("CSE_PROXY_HOPS", "0")),
            webhook_max_bytes=int(env.get("CSE_WEBHOOK_MAX_BYTES", "1048576")),
            webhook_coalesce_seconds=float(env.get("CSE_WEBHOOK_COALESCE_SECONDS", "0")),
            webhook_retention_days=retention_days,
            webhook_dedupe_days=int(env.get("CSE_WEBHOOK_DEDUPE_DAYS", str(2 * retention_days))),
            webhook_refusals_per_minute=int(env.get("CSE_WEBHOOK_REFUSALS_PER_MINUTE", "60")),
            hubspot_access_token=env.get("HUBSPOT_ACCESS_TOKEN"),
            intercom_access_token=env.get("INTERCOM_ACCESS_TOKEN"),
            mappings_dir=Path(mappings_dir) if mappings_dir else None,
            env=tuple(sorted(env.items())),
            model_key=env.get("CSE_MODEL_KEY") or None,
            model_key_file=Path(env["CSE_MODEL_KEY_FILE"])
            if env.get("CSE_MODEL_KEY_FILE")
            else default_model_key_file(env),
            secret_key=env.get("CSE_SECRET_KEY") or None,
            secret_key_file=Path(env["CSE_SECRET_KEY_FILE"])
            if env.get("CSE_SECRET_KEY_FILE")
            else default_secret_key_file(env),
            login_attempts_per_minute=int(env.get("CSE_LOGIN_ATTEMPTS_PER_MINUTE", "10")),
            card_programs=tuple(p.strip() for p in env.get("CSE_CARD_PROGRAMS", "").split(",") if p.strip())
            or cls.card_programs,
            redis_timeout_seconds=float(env.get("CSE_REDIS_TIMEOUT_SECONDS", "5")),
            db_connect_timeout_seconds=int(env.get("CSE_DB_CONNECT_TIMEOUT_SECONDS", "5")),
            db_statement_timeout_seconds=float(env.get("CSE_DB_STATEMENT_TIMEOUT_SECONDS", "15")),
            store_wait_seconds=float(env.get("CSE_STORE_WAIT_SECONDS", "5")),
            webhook_lease_seconds=float(env.get("CSE_WEBHOOK_LEASE_SECONDS", "120")),
            webhook_max_attempts=int(env.get("CSE_WEBHOOK_MAX_ATTEMPTS", "5")),
            webhook_retry_seconds=float(env.get("CSE_WEBHOOK_RETRY_SECONDS", "60")),
            webhook_sweep_seconds=int(env.get("CSE_WEBHOOK_SWEEP_SECONDS", "60")),
            sync_interval_seconds=int(env.get("CSE_SYNC_INTERVAL_SECONDS", "900")),
            programs_dir=Path(env["CSE_PROGRAMS_DIR"]) if env.get("CSE_PROGRAMS_DIR") else None,
            task_budget_per_csm=int(env.get("CSE_TASK_BUDGET_PER_CSM", "25")),
            messages_per_week=int(env.get("CSE_MESSAGES_PER_WEEK", "2")),
            program_tick_writers=int(env.get("CSE_PROGRAM_TICK_WRITERS", "2")),
            quiet_weekdays=env.get("CSE_QUIET_WEEKDAYS", ""),
            quiet_hours=env.get("CSE_QUIET_HOURS", ""),
            quiet_blackouts=env.get("CSE_QUIET_BLACKOUTS", ""),
            default_timezone=env.get("CSE_DEFAULT_TIMEZONE", "UTC"),
            segment_write_key=env.get("CSE_SEGMENT_WRITE_KEY") or None,
            segment_mapping=env.get("CSE_SEGMENT_MAPPING") or None,
        )

    def value(self, name: str) -> str | None:
        """A setting by attribute name, else the environment variable of that name upper-cased: how a connector
        package reads credentials this class has no field for."""
        if name in self.__dataclass_fields__ and name != "env":
            return getattr(self, name)
        return dict(self.env).get(name.upper())

    def __repr__(self) -> str:
        """Secrets left out, and the passwords inside the database and Redis URLs masked."""
        shown = []
        for item in fields(self):
            if item.repr:
                value = getattr(self, item.name)
                if item.name in ("database_url", "redis_url"):
                    value = mask_url_password(value)
                shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
