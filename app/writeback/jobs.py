"""RQ job entry points for write-back, and the wiring that turns settings into pushers and queues.

Job functions take plain ids and build what they need from the environment, so any worker process on any
machine that reaches Redis and the database can run them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Engine

from app.queues import get_queue, job_alive
from app.settings import Settings
from app.store.db import make_engine
from app.sync.versions import active_mapping, mappings_dir_of
from app.writeback.deliver import DeliveryReport, deliver_rows, dispatch, sweep
from connectors.push import VendorPusher
from connectors.registry import all_connectors, connector


@cache
def _engine(database_url: str) -> Engine:
    return make_engine(database_url)


@cache
def pusher_for(settings: Settings, vendor: str) -> VendorPusher:
    """One pusher (one vendor session) per process and settings, reused by every job the worker runs."""
    return connector(vendor).build_pusher(settings)


def batch_limits(vendors) -> dict[str, dict[str, int]]:
    return {v: connector(v).pusher_class().batch_limits for v in vendors}


def deliver_job(vendor: str, row_ids: list[int]) -> dict:
    """One batch of outbox rows for one vendor (an RQ job)."""
    settings = Settings.from_env()
    engine = _engine(settings.database_url)
    with engine.connect() as conn:
        mapping = active_mapping(conn, vendor, connector(vendor).push_mapping, mappings_dir_of(settings))
    report: DeliveryReport = deliver_rows(engine, pusher_for(settings, vendor), mapping, row_ids)
    return report.__dict__


def enqueue_deliveries(
    settings: Settings, engine: Engine, vendors=None, connection=None, queue_prefix: str = ""
) -> int:
    """Dispatch pending rows into delivery jobs on the vendors' queues (default: every vendor); returns the number
    of jobs. `queue_prefix` names a private set of queues (the demo's), which only its own worker listens on."""
    vendors = [c.name for c in all_connectors()] if vendors is None else list(vendors)
    queues = {v: get_queue(settings, queue_prefix + connector(v).writeback_queue, connection) for v in vendors}

    def enqueue(vendor: str, job_id: str, row_ids: list[int]) -> None:
        options = {}
        if settings.redis_url:
            from rq.rate_limit import RateLimit

            options["rate_limit"] = RateLimit(key=f"cse-{vendor}", concurrency=connector(vendor).writeback_concurrency)
        queues[vendor].enqueue(deliver_job, vendor, row_ids, job_id=job_id, **options)

    return len(dispatch(engine, enqueue, batch_limits(vendors)))


def sweep_job() -> int:
    """Re-open rows whose delivery job was lost (an RQ job run by the scheduler)."""
    settings = Settings.from_env()
    return sweep(_engine(settings.database_url), lambda job_id: job_alive(settings, job_id), datetime.now())
