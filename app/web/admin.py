"""Admin pages (HTTP basic auth with CSE_ADMIN_PASSWORD): the webhook event log."""

from __future__ import annotations

import hmac
from functools import wraps

from flask import Blueprint, Response, render_template, request
from sqlalchemy import func, select

from app.store.models import WebhookEvent
from app.web import context

admin = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
STATUSES = ("received", "processed", "ignored", "rejected", "malformed")


def login_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        settings = context.settings()
        auth = request.authorization
        valid = (
            settings.admin_password is not None
            and auth is not None
            and hmac.compare_digest(auth.username or "", settings.admin_user)
            and hmac.compare_digest(auth.password or "", settings.admin_password)
        )
        if not valid:
            return Response("login required\n", 401, {"WWW-Authenticate": 'Basic realm="cse admin"'})
        return view(*args, **kwargs)

    return guarded


@admin.get("/events")
@login_required
def events():
    """Received, duplicate, rejected and ignored webhook requests, newest first, with the reason."""
    status = request.args.get("status")
    vendor = request.args.get("vendor")
    table = WebhookEvent.__table__
    query = select(table).order_by(table.c.id.desc()).limit(min(int(request.args.get("limit", 200)), 1000))
    if status in STATUSES:
        query = query.where(table.c.status == status)
    if vendor:
        query = query.where(table.c.vendor == vendor)
    with context.engine().connect() as conn:
        rows = conn.execute(query).all()
        counts = dict(conn.execute(select(table.c.status, func.count()).group_by(table.c.status)).all())
        duplicates = conn.scalar(select(func.coalesce(func.sum(table.c.duplicates), 0)))
    listed = [
        {"id": r.id, "vendor": r.vendor, "event_id": r.event_id, "received_at": r.received_at.isoformat(),
         "status": r.status, "kind": r.kind, "object": r.object, "object_id": r.object_id, "reason": r.reason,
         "duplicates": r.duplicates, "account_ids": r.account_ids}
        for r in rows
    ]  # fmt: skip
    summary = {"counts": counts, "duplicates": int(duplicates)}
    if request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json":
        return {"summary": summary, "events": listed}
    return render_template("events.html", events=listed, summary=summary, statuses=STATUSES)
