"""The Flask service: webhook endpoints, the admin's event log and the book-of-business dashboard."""

from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from app.settings import Settings
from app.store.db import STORE_DOWN, make_engine, upgrade_schema
from app.web.throttle import RefusalBudget

STORE_RETRY_AFTER = 10  # seconds a sender is asked to wait when the store is down
# No inline script or style anywhere, nothing framed: pages load only our own static files.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if engine is None:
        engine = make_engine(settings.database_url, settings.db_statement_timeout_seconds,
                             settings.db_connect_timeout_seconds)  # fmt: skip
        upgrade_schema(engine)
    app = Flask(__name__)
    if settings.proxy_hops > 0:  # only then are X-Forwarded-For / -Proto the client's, not anyone's say-so
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    # Bodies past this size are refused with 413 before any handler reads them.
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_bytes
    app.extensions["cse"] = {"settings": settings, "engine": engine,
                             "refusals": RefusalBudget(settings.webhook_refusals_per_minute)}  # fmt: skip

    from app.web.admin import admin
    from app.web.cards import cards
    from app.web.segment import segment
    from app.web.webhooks import webhooks

    app.register_blueprint(webhooks)
    app.register_blueprint(admin)
    app.register_blueprint(cards)
    app.register_blueprint(segment)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    def store_down(error: Exception) -> Response:
        """The database is down, restarting or frozen: 503 with Retry-After, so senders retry instead of dropping
        the event (vendors resend on 5xx; a 500 page helped no one)."""
        app.logger.warning("store unavailable: %s", error)
        body = '{"error": "the store is unavailable, try again later"}\n'
        return Response(body, 503, {"Retry-After": str(STORE_RETRY_AFTER)}, mimetype="application/json")

    for error_class in STORE_DOWN:
        app.register_error_handler(error_class, store_down)

    @app.after_request
    def secure_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    return app
