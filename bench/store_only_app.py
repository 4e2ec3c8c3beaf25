"""The second baseline for `bench.webhooks`: the bare endpoint plus the one durable write every webhook needs.

It stores each request as one new event through the product's own intake (`record_events`), and does nothing
else: no signature, no parsing, no scheduling. Its ratio to the bare app is the ceiling any design that commits
each webhook before acknowledging it can reach on this machine and store; the webhook's distance below it is what
our verification, parsing and scheduling cost.
"""

from __future__ import annotations

import itertools
import os

from flask import Flask, Response, request

from app.settings import Settings
from app.store.db import make_engine
from app.webhook_intake import record_events
from bench.bare_app import WEBHOOK_PATHS
from connectors.webhook_common import VendorEvent


def create_app() -> Flask:
    engine = make_engine(Settings.from_env().database_url)
    app = Flask(__name__)
    numbers = itertools.count()

    def receive() -> Response:
        body = request.get_data(cache=False)
        event = VendorEvent(f"{os.getpid()}-{next(numbers)}", "", "company", "1", "store-only")
        record_events(engine, "store-only", [event], body)
        return Response(status=204)

    for path in WEBHOOK_PATHS:
        app.add_url_rule(path, endpoint=path, view_func=receive, methods=["POST"])

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    return app
