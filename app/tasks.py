"""Periodic and triggered jobs (run by RQ workers, or in-process in the embedded mode).

Each takes plain arguments and builds its own engine and settings, so the scheduler can enqueue it by name.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.jobs import redis_connection
from app.ml.scorer import load_scoring_artifact
from app.rescoring import rescore
from app.settings import Settings
from app.writeback.jobs import _engine, enqueue_deliveries
from app.writeback.outbox import release_due_actions
from engine.health_config import load_health_config
from engine.playbooks import load_playbooks


def dispatch_job() -> int:
    """Hand pending outbox rows to delivery jobs."""
    settings = Settings.from_env()
    connection = redis_connection(settings) if settings.redis_url else None
    return enqueue_deliveries(settings, _engine(settings.database_url), connection=connection)


def release_actions_job() -> int:
    """Campaign steps that fall due become outbox rows."""
    settings = Settings.from_env()
    with _engine(settings.database_url).begin() as conn:
        return release_due_actions(conn, datetime.now())


def rescore_job(account_ids: list[int] | None = None, as_of: str | None = None) -> int:
    """Rescore some or all accounts and queue what changed; then dispatch at once so CRMs see it quickly."""
    settings = Settings.from_env()
    result = rescore(
        _engine(settings.database_url),
        date.fromisoformat(as_of) if as_of else date.today(),
        load_health_config(settings.health_config),
        load_playbooks(settings.playbooks),
        settings.writeback_score_step,
        account_ids,
        artifact=load_scoring_artifact(settings.data_dir),
        chunk_size=settings.score_chunk_accounts,
    )
    dispatch_job()
    return result.accounts


def prune_webhook_events_job() -> int:
    """The nightly trim of the webhook event log to its retention window (CSE_WEBHOOK_RETENTION_DAYS, 0 = keep all)."""
    from app.webhook_retention import prune_webhook_events

    settings = Settings.from_env()
    if settings.webhook_retention_days <= 0:
        return 0
    cutoff = datetime.now() - timedelta(days=settings.webhook_retention_days)
    return prune_webhook_events(_engine(settings.database_url), cutoff)


def process_webhooks_job(as_of: str | None = None) -> dict:
    """Process the waiting webhook events (an RQ job; settings from the environment)."""
    from app.jobs import SCORE_QUEUE, get_queue
    from app.webhook_intake import received_waiting, release_coalescing, schedule_processing_on_redis

    settings = Settings.from_env()
    engine = _engine(settings.database_url)
    if not settings.redis_url:
        return process_webhooks(settings, engine, as_of)
    connection = redis_connection(settings)
    release_coalescing(connection)
    result = process_webhooks(settings, engine, as_of)
    if received_waiting(engine):  # events that came in during this run and found it already scheduled
        queue = get_queue(settings, SCORE_QUEUE, connection)
        schedule_processing_on_redis(connection, queue, 0, process_webhooks_job)
    return result


def process_webhooks(settings: Settings, engine, as_of: str | None = None) -> dict:
    """Pull fresh data from the vendors the waiting events come from, rescore the touched accounts once, write back."""
    from app.cli_sync import build_sources, vendor_configured
    from app.sync import sync_records
    from app.webhook_intake import process_received

    day = date.fromisoformat(as_of) if as_of else date.today()

    def pull(wanted: dict[str, dict[str, list[str]]]) -> None:
        """Just the records the events name, fetched by id from each vendor they come from."""
        for vendor, records in sorted(wanted.items()):
            if not vendor_configured(settings, vendor):
                continue
            for source in build_sources(settings, vendor, engine):
                sync_records(engine, source, records)

    def rescore_accounts(account_ids: list[int]) -> None:
        config, playbooks = load_health_config(settings.health_config), load_playbooks(settings.playbooks)
        artifact = load_scoring_artifact(settings.data_dir)
        rescore(engine, day, config, playbooks, settings.writeback_score_step, account_ids, artifact=artifact,
                chunk_size=settings.score_chunk_accounts)  # fmt: skip

    result = process_received(engine, pull, rescore_accounts)
    if result.accounts:
        enqueue_deliveries(settings, engine, connection=redis_connection(settings) if settings.redis_url else None)
    return {"events": result.events, "accounts": len(result.accounts), "unresolved": result.unresolved}
