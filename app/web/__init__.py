"""The Flask service: webhook and card endpoints (signed by the vendors), and the web app people sign in to: the
success dashboard, accounts, and the admin editors."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, redirect, request, url_for
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from app.keyfile import session_key
from app.settings import Settings
from app.store.db import STORE_DOWN, make_engine, upgrade_schema
from app.web import context
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
    # The refusal budget is shared by the web workers through Redis when there is one (app/web/throttle.py).
    refusals = RefusalBudget(settings.webhook_refusals_per_minute, shared=context.redis if settings.redis_url else None)
    app.extensions["cse"] = {"settings": settings, "engine": engine, "refusals": refusals}

    _sessions(app, settings)
    _template_helpers(app, settings)

    from app.web.accounts import accounts
    from app.web.admin import admin
    from app.web.auth import auth, login_key
    from app.web.cards import cards
    from app.web.dashboard import dashboard
    from app.web.program_outcomes import program_views
    from app.web.segment import segment
    from app.web.webhooks import webhooks

    for blueprint in (webhooks, cards, segment, auth, dashboard, accounts, program_views, admin):
        app.register_blueprint(blueprint)
    # Vendors sign what they send to webhooks and cards (Segment senders use the write key); every other
    # state-changing request needs our CSRF token.
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks)
    csrf.exempt(cards)
    csrf.exempt(segment)
    limiter = Limiter(key_func=login_key, app=app, storage_uri="memory://", default_limits=[])
    app.view_functions["auth.login"] = limiter.limit(f"{settings.login_attempts_per_minute}/minute", methods=["POST"])(
        app.view_functions["auth.login"]
    )

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """Browsers ask for it on pages without a <link rel=icon> (error pages): answer with ours, not a 404."""
        return redirect(url_for("static", filename="favicon.svg"), 301)

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


def _sessions(app: Flask, settings: Settings) -> None:
    from app.web.auth import SessionInterface

    app.secret_key = session_key(settings.secret_key, settings.secret_key_file, settings.data_dir)
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="cse_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )


def _template_helpers(app: Flask, settings: Settings) -> None:
    """What templates call besides Flask's own: a CRM record's web address (None without the vendor's setting),
    the setting that would make one, and the CRM's name as it writes it."""
    from app.web.crm_links import crm_label, missing_setting, record_url

    app.jinja_env.globals.update(
        crm_url=lambda r: record_url(settings, r.vendor, r.object, r.external_id),
        crm_setting=missing_setting,
        crm_label=crm_label,
    )
