"""Periodic and triggered jobs (run by RQ workers, or in-process in the embedded mode).

Each takes plain arguments and builds its own engine and settings, so any worker can run it; SCHEDULE at the end is
the scheduler's timetable (`cse scheduler`). The queue plumbing they run on is app/queues.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.ml.auto import models_for
from app.programs.definitions import load_programs
from app.queues import SCORE_QUEUE, SYNC_QUEUE, get_queue, redis_connection
from app.rescoring import plans_write_back, rescore
from app.settings import Settings
from app.writeback.jobs import _engine, enqueue_deliveries, sweep_job
from app.writeback.outbox import release_due_actions
from engine.health_config import load_health_config


def dispatch_job(vendors: list[str] | None = None) -> int:
    """Hand pending outbox rows (of the given vendors; default all) to delivery jobs."""
    settings = Settings.from_env()
    connection = redis_connection(settings) if settings.redis_url else None
    return enqueue_deliveries(settings, _engine(settings.database_url), vendors=vendors, connection=connection)


def release_actions_job() -> int:
    """Campaign steps that fall due become outbox rows."""
    settings = Settings.from_env()
    with _engine(settings.database_url).begin() as conn:
        return release_due_actions(conn, datetime.now())


def program_tick_job() -> dict:
    """Program steps that fell due: sent (within caps and budgets), recorded and released to the outbox together."""
    settings = Settings.from_env()
    result = tick_programs(settings, _engine(settings.database_url))
    if result.outbox_rows:
        dispatch_job()
    return {
        "sent": result.sent,
        "held": result.held,
        "deferred": result.deferred,
        "suppressed": result.suppressed,
        "outbox_rows": result.outbox_rows,
    }


def tick_programs(settings: Settings, engine):
    """One program tick now (app/programs/tick.run_tick) with the deployment's programs, caps, budget and quiet
    periods; referrals from the CRM are recorded and attributed in the same transaction."""
    from app.programs.contacts import quiet_rules_of
    from app.programs.referrals import sync_referrals
    from app.programs.tick import Limits, run_tick

    limits = Limits(settings.messages_per_week, settings.task_budget_per_csm, quiet_rules_of(settings))
    programs, now = load_programs(settings, engine), datetime.now()
    with engine.begin() as conn:
        sync_referrals(conn, programs, now)
        return run_tick(conn, programs, now, limits, settings.program_tick_writers)


def rescore_job(account_ids: list[int] | None = None, as_of: str | None = None) -> int:
    """Rescore some or all accounts and queue what changed; then dispatch at once so CRMs see it quickly."""
    settings = Settings.from_env()
    engine, config = _engine(settings.database_url), load_health_config(settings.health_config)
    models = models_for(settings, engine, config)
    day = date.fromisoformat(as_of) if as_of else date.today()
    result = rescore(
        engine,
        day,
        config,
        settings.writeback_score_step,
        account_ids,
        artifact=models.artifact,
        chunk_size=settings.score_chunk_accounts,
        write_back=plans_write_back(day),
        calibration=models.calibration,
        programs=load_programs(settings, engine),
        parts=settings.score_parts,
    )
    dispatch_job()
    return result.accounts


def survey_answers_job() -> dict:
    """Survey answers captured back from every vendor with a survey reader (app/programs/surveys.py); the accounts
    that answered are rescored at once, so promoters and detractors enter their programs now."""
    from app.programs.surveys import capture_answers
    from connectors.registry import all_connectors

    settings = Settings.from_env()
    readers = {c.name: c.build_surveys(settings) for c in all_connectors() if c.surveys and c.configured(settings)}
    if not readers:
        return {"stored": 0}
    engine = _engine(settings.database_url)
    try:
        result = capture_answers(engine, readers, load_programs(settings, engine), datetime.now())
    finally:
        for reader in readers.values():
            reader.close()
    if result.accounts:
        rescore_job(result.accounts)
    return {"stored": result.stored, "nps": result.nps, "csat": result.csat}


def prune_webhook_events_job() -> int:
    """The nightly trim of the webhook event log to its retention window (CSE_WEBHOOK_RETENTION_DAYS, 0 = keep all);
    processed events' ids stay for deduplication for CSE_WEBHOOK_DEDUPE_DAYS (at least the retention window)."""
    from app.webhook_events.retention import prune_webhook_events

    settings = Settings.from_env()
    if settings.webhook_retention_days <= 0:
        return 0
    now = datetime.now()
    keep_keys = max(settings.webhook_dedupe_days, settings.webhook_retention_days)
    return prune_webhook_events(
        _engine(settings.database_url),
        now - timedelta(days=settings.webhook_retention_days),
        keys_before=now - timedelta(days=keep_keys),
    )


def process_webhooks_job(as_of: str | None = None) -> dict:
    """Process the waiting webhook events (an RQ job; settings from the environment)."""
    from app.webhook_events.processing import received_waiting, release_coalescing, schedule_processing_on_redis

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
    from app.sources import build_sources, vendor_configured
    from app.sync import sync_records
    from app.sync.versions import load_active_mappings, mappings_dir_of
    from app.webhook_events.processing import RetryPolicy, process_received
    from connectors.registry import vendor_names

    day = date.fromisoformat(as_of) if as_of else date.today()

    def pull(wanted: dict[str, dict[str, list[str]]]) -> None:
        """Just the records the events name, fetched by id from each vendor they come from."""
        vendors = [v for v in sorted(wanted) if v in vendor_names() and vendor_configured(settings, v)]
        mappings = load_active_mappings(settings, engine, vendors)
        for vendor in vendors:
            for source in build_sources(settings, vendor, engine, mappings):
                sync_records(engine, source, wanted[vendor], mappings_dir=mappings_dir_of(settings), mappings=mappings)

    def rescore_accounts(account_ids: list[int]) -> None:
        config = load_health_config(settings.health_config)
        models = models_for(settings, engine, config)
        rescore(engine, day, config, settings.writeback_score_step, account_ids, artifact=models.artifact,
                chunk_size=settings.score_chunk_accounts, calibration=models.calibration,
                programs=load_programs(settings, engine))  # fmt: skip

    from app.history.segment import ingest_segment_events, segment_types
    from app.programs.surveys import answers_announced

    policy = RetryPolicy.from_settings(settings)
    with engine.connect() as conn:
        answered = answers_announced(conn)
    segment = ingest_segment_events(engine, segment_types(settings.segment_mapping), policy=policy)
    result = process_received(engine, pull, rescore_accounts, policy=policy)
    if answered:  # a reply to a survey or a rating: read the answers now, so the routing follows at once
        survey_answers_job()
    if segment.accounts:
        rescore_accounts(segment.accounts)
    if result.accounts or segment.accounts:
        tick_programs(settings, engine)  # what the rescoring started (an intervention's first steps) goes out now
        enqueue_deliveries(settings, engine, connection=redis_connection(settings) if settings.redis_url else None)
    return {"events": result.events, "accounts": len(result.accounts), "unresolved": result.unresolved,
            "retrying": result.retrying, "failed": result.failed,
            "segment_messages": segment.messages, "segment_events": segment.events}  # fmt: skip


def incremental_sync_job() -> dict:
    """The periodic incremental sync of every configured vendor (CSE_SYNC_INTERVAL_SECONDS): it catches up what
    no webhook announced, and what the events that ran out of attempts named."""
    from app.sources import build_sources
    from app.sync import run_sync
    from app.sync.versions import load_active_mappings, mappings_dir_of
    from connectors.registry import all_connectors, vendor_names

    settings = Settings.from_env()
    if not any(c.configured(settings) for c in all_connectors()):
        return {"ok": True, "skipped": "no vendor is configured"}
    engine = _engine(settings.database_url)
    mappings = load_active_mappings(settings, engine, list(vendor_names()))
    sources = build_sources(settings, None, engine, mappings)
    log = run_sync(engine, sources, mappings_dir=mappings_dir_of(settings), mappings=mappings,
                   log_dir=settings.data_dir / "sync-logs")  # fmt: skip
    return {"ok": log.ok, "errors": len(log.errors)}


# The scheduler's timetable: (job, queue, interval in seconds or cron expression).
_settings = Settings.from_env()
SCHEDULE = (
    (dispatch_job, SCORE_QUEUE, 30, None),
    (release_actions_job, SCORE_QUEUE, 900, None),
    (program_tick_job, SCORE_QUEUE, 900, None),
    (survey_answers_job, SYNC_QUEUE, 900, None),
    (sweep_job, SCORE_QUEUE, 300, None),
    (process_webhooks_job, SCORE_QUEUE, _settings.webhook_sweep_seconds, None),
    (incremental_sync_job, SYNC_QUEUE, _settings.sync_interval_seconds, None),
    (rescore_job, SCORE_QUEUE, None, "0 2 * * *"),
    (prune_webhook_events_job, SCORE_QUEUE, None, "30 3 * * *"),
)
