"""The second baseline for `bench.webhooks`: the bare endpoint plus the one durable write every webhook needs.

It stores each request as one new event through the product's own intake (`record_events`), and does nothing
else: no signature, no parsing, no scheduling. Its ratio to the bare app is the ceiling any design that commits
each webhook before acknowledging it can reach on this machine and store; the webhook's distance below it is what
our verification, parsing and scheduling cost.
"""

from __future__ import annotations

import itertools
import os

from flask import Flask

from app.settings import Settings
from app.store.db import make_engine
from app.webhook_events.store import record_events
from bench.bare_app import webhook_paths_app
from connectors.webhook_common import VendorEvent


def create_app() -> Flask:
    engine = make_engine(Settings.from_env().database_url)
    numbers = itertools.count()

    def store(body: bytes) -> None:
        event = VendorEvent(
            f"{os.getpid()}-{next(numbers)}", "", "company", "1", "store-only", payload=body.decode("utf-8", "replace")
        )
        record_events(engine, "store-only", [event])

    return webhook_paths_app(store)
