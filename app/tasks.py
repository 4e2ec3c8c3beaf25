"""Periodic and triggered jobs (run by RQ workers, or in-process in the embedded mode).

Each takes plain arguments and builds its own engine and settings, so the scheduler can enqueue it by name.
"""

from __future__ import annotations

from datetime import date, datetime

from app.jobs import redis_connection
from app.rescoring import rescore
from app.settings import Settings
from app.writeback.jobs import _engine, enqueue_deliveries, sweep_job
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
    )
    dispatch_job()
    return len(result.scored)


__all__ = ["dispatch_job", "release_actions_job", "rescore_job", "sweep_job"]
