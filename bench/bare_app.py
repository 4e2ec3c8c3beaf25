"""The baseline for `bench.webhooks`: the webhook route paths on bare Flask, reading the body and answering 204.

Served by the same gunicorn settings as `app:create_app()`, it measures what the server, Flask's routing and the
loopback cost on their own, so the webhook figure is a ratio that says how much verification, the durable store
and the Redis scheduling add, independent of the machine the benchmark runs on.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request

WEBHOOK_PATHS = ("/webhooks/hubspot", "/webhooks/intercom", "/webhooks/salesforce", "/webhooks/salesforce/flow")


def create_app() -> Flask:
    """Same paths as the product's webhook blueprint; the body is read (as the product does) so the work compares."""
    return webhook_paths_app(lambda body: None)


def webhook_paths_app(handle: Callable[[bytes], None]) -> Flask:
    """Bare Flask on the webhook paths: read the body, hand it to `handle`, answer 204 (and a readiness probe)."""
    app = Flask(__name__)

    def receive() -> Response:
        handle(request.get_data(cache=False))
        return Response(status=204)

    for path in WEBHOOK_PATHS:
        app.add_url_rule(path, endpoint=path, view_func=receive, methods=["POST"])

    @app.get("/healthz")
    def healthz() -> dict:
        """Readiness probe the benchmark polls before loading, as it does on the product."""
        return {"ok": True}

    return app
