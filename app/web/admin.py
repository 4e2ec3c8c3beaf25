"""Admin pages (HTTP basic auth with CSE_ADMIN_PASSWORD): the webhook event log."""

from __future__ import annotations

import hmac
import re
from functools import wraps

from flask import Blueprint, Response, render_template, request
from sqlalchemy import func, select

from app.store.models import WebhookEvent
from app.web import context

admin = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
STATUSES = ("received", "processing", "processed", "failed", "ignored", "rejected", "malformed")
MAX_LIMIT = 1000
VENDOR = re.compile(r"[a-z][a-z_-]{0,15}")
# What the log shows; the events' payloads (the bulk of the table) are never read for it.
LISTED = ("id", "vendor", "event_id", "received_at", "status", "kind", "object", "object_id", "reason", "duplicates",
          "account_ids", "source", "body_bytes", "body_sha256", "attempts", "next_attempt_at")  # fmt: skip


def login_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        settings = context.settings()
        auth = request.authorization
        valid = (
            settings.admin_password is not None
            and auth is not None
            # As bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
            and hmac.compare_digest((auth.username or "").encode(), settings.admin_user.encode())
            and hmac.compare_digest((auth.password or "").encode(), settings.admin_password.encode())
        )
        if not valid:
            return Response("login required\n", 401, {"WWW-Authenticate": 'Basic realm="cse admin"'})
        return view(*args, **kwargs)

    return guarded


@admin.get("/events")
@login_required
def events():
    """Received, duplicate, rejected and ignored webhook requests, newest first, with the reason; events whose
    processing failed show their attempts, the error and when they are retried (or `failed` once out of tries)."""
    status = request.args.get("status")
    vendor = request.args.get("vendor")
    limit = request.args.get("limit", "200")
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= MAX_LIMIT):
        return Response(f"limit must be a whole number from 1 to {MAX_LIMIT}\n", 400, mimetype="text/plain")
    if vendor and not VENDOR.fullmatch(vendor):
        return Response("vendor must be a vendor name such as hubspot\n", 400, mimetype="text/plain")
    table = WebhookEvent.__table__
    query = select(*(table.c[name] for name in LISTED)).order_by(table.c.id.desc()).limit(int(limit))
    if status in STATUSES:
        query = query.where(table.c.status == status)
    if vendor:
        query = query.where(table.c.vendor == vendor)
    with context.engine().connect() as conn:
        rows = conn.execute(query).all()
        counts = dict(conn.execute(select(table.c.status, func.count()).group_by(table.c.status)).all())
        duplicates = conn.scalar(select(func.coalesce(func.sum(table.c.duplicates), 0)))
    listed = [{**row._asdict(), "received_at": row.received_at.isoformat(),
               "next_attempt_at": row.next_attempt_at and row.next_attempt_at.isoformat()} for row in rows]  # fmt: skip
    summary = {"counts": counts, "duplicates": int(duplicates)}
    if request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json":
        return {"summary": summary, "events": listed}
    return render_template("events.html", events=listed, summary=summary, statuses=STATUSES)
