"""The Flask service: webhook endpoints, the admin's event log and the book-of-business dashboard."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if engine is None:
        engine = make_engine(settings.database_url)
        upgrade_schema(engine)
    app = Flask(__name__)
    # Bodies past this size are refused with 413 before any handler reads them.
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_bytes
    app.extensions["cse"] = {"settings": settings, "engine": engine}

    from app.web.admin import admin
    from app.web.cards import cards
    from app.web.webhooks import webhooks

    app.register_blueprint(webhooks)
    app.register_blueprint(admin)
    app.register_blueprint(cards)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    return app
