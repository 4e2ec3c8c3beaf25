"""RQ job entry points for write-back, and the wiring that turns settings into pushers and queues.

Job functions take plain ids and build what they need from the environment, so any worker process on any
machine that reaches Redis and the database can run them.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from functools import cache

from sqlalchemy import Engine

from app.queues import WRITEBACK_QUEUES, get_queue, job_alive
from app.settings import Settings
from app.store.db import make_engine
from app.sync import active_mapping
from app.writeback.deliver import DeliveryReport, deliver_rows, dispatch, sweep
from connectors.push import VendorPusher

PUSH_MAPPINGS = {"salesforce": "push_account", "hubspot": "push_companies", "intercom": "push_companies"}
PUSHERS = {
    "salesforce": (
        "connectors.salesforce.push",
        "SalesforcePusher",
        "connectors.salesforce.client",
        "SalesforceClient",
    ),
    "hubspot": ("connectors.hubspot.push", "HubSpotPusher", "connectors.hubspot.client", "HubSpotClient"),
    "intercom": ("connectors.intercom.push", "IntercomPusher", "connectors.intercom.client", "IntercomClient"),
}
# Concurrent write-back jobs per vendor: its share of the workers, whatever the backlog of the others.
VENDOR_CONCURRENCY = {"salesforce": 2, "hubspot": 1, "intercom": 1}


@cache
def _engine(database_url: str) -> Engine:
    return make_engine(database_url)


@cache
def pusher_for(settings: Settings, vendor: str) -> VendorPusher:
    """One pusher (one vendor session) per process and settings, reused by every job the worker runs."""
    push_module, push_class, client_module, client_class = PUSHERS[vendor]
    client = getattr(importlib.import_module(client_module), client_class).from_settings(settings)
    return getattr(importlib.import_module(push_module), push_class)(client)


def batch_limits(settings: Settings, vendors) -> dict[str, dict[str, int]]:
    return {v: getattr(importlib.import_module(PUSHERS[v][0]), PUSHERS[v][1]).batch_limits for v in vendors}


def deliver_job(vendor: str, row_ids: list[int]) -> dict:
    """One batch of outbox rows for one vendor (an RQ job)."""
    settings = Settings.from_env()
    engine = _engine(settings.database_url)
    with engine.connect() as conn:
        mapping = active_mapping(conn, vendor, PUSH_MAPPINGS[vendor])
    report: DeliveryReport = deliver_rows(engine, pusher_for(settings, vendor), mapping, row_ids)
    return report.__dict__


def enqueue_deliveries(settings: Settings, engine: Engine, vendors=tuple(PUSHERS), connection=None) -> int:
    """Dispatch pending rows into delivery jobs on the vendors' queues; returns the number of jobs."""
    queues = {v: get_queue(settings, WRITEBACK_QUEUES[v], connection) for v in vendors}

    def enqueue(vendor: str, job_id: str, row_ids: list[int]) -> None:
        options = {}
        if settings.redis_url:
            from rq.rate_limit import RateLimit

            options["rate_limit"] = RateLimit(key=f"cse-{vendor}", concurrency=VENDOR_CONCURRENCY[vendor])
        queues[vendor].enqueue(deliver_job, vendor, row_ids, job_id=job_id, **options)

    return len(dispatch(engine, enqueue, batch_limits(settings, vendors)))


def sweep_job() -> int:
    """Re-open rows whose delivery job was lost (an RQ job run by the scheduler)."""
    settings = Settings.from_env()
    return sweep(_engine(settings.database_url), lambda job_id: job_alive(settings, job_id), datetime.now())
