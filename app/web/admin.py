"""Admin pages (signed-in admins only): the webhook event log, operations (sync status, outbox), programs, the
audit log. The mapping editor and health settings live in admin_mappings.py and admin_health.py on this blueprint."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select, update

from app.programs.catalog import offered_programs
from app.store.models import OutboxRow, ProgramEnrollment, QuarantinedRecord, WebhookEvent
from app.users import audit, audit_log
from app.web import context
from app.web.auth import current_user, requires

admin = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
STATUSES = ("received", "processing", "processed", "failed", "ignored", "rejected", "malformed")
MAX_LIMIT = 1000
VENDOR = re.compile(r"[a-z][a-z_-]{0,15}")
SYNC_LOGS_SHOWN = 20
# What the log shows; the events' payloads (the bulk of the table) are never read for it.
LISTED = ("id", "vendor", "event_id", "received_at", "status", "kind", "object", "object_id", "reason", "duplicates",
          "account_ids", "source", "body_bytes", "body_sha256", "attempts", "next_attempt_at")  # fmt: skip


@admin.before_request
@requires("admin")
def _admins_only() -> None:
    """Every admin page needs an admin; others are sent to sign in (or refused with 403)."""
    return None


@admin.get("/events")
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


def _sync_logs(folder: Path) -> list[dict]:
    """The latest sync logs (JSON files the sync writes), newest first."""
    if not folder.is_dir():
        return []
    logs = []
    for path in sorted(folder.glob("*.json"), reverse=True)[:SYNC_LOGS_SHOWN]:
        try:
            logs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return logs


def _latest_per_vendor(logs: list[dict]) -> dict[str, dict]:
    """Per vendor, the newest run's objects (records, API calls, errors, quarantined records with reasons)."""
    latest: dict[str, dict] = {}
    for log in logs:
        for obj in log.get("objects", []):
            entry = latest.setdefault(
                obj["vendor"],
                {
                    "started_at": log.get("started_at"),
                    "objects": [],
                    "api_calls": log.get("api_calls", {}).get(obj["vendor"]),
                },
            )
            if entry["started_at"] == log.get("started_at"):
                entry["objects"].append(obj)
    return latest


@admin.get("/operations")
def operations():
    settings = context.settings()
    with context.engine().connect() as conn:
        outbox = conn.execute(
            select(OutboxRow.vendor, OutboxRow.status, func.count())
            .group_by(OutboxRow.vendor, OutboxRow.status)
            .order_by(OutboxRow.vendor)
        ).all()
        parked = conn.execute(
            select(
                OutboxRow.id,
                OutboxRow.vendor,
                OutboxRow.operation,
                OutboxRow.account_id,
                OutboxRow.attempts,
                OutboxRow.last_error,
                OutboxRow.updated_at,
                OutboxRow.status,
            )
            .where(OutboxRow.status.in_(("parked", "pending")))
            .order_by(OutboxRow.status, OutboxRow.id.desc())
            .limit(200)
        ).all()
        quarantine = conn.execute(
            select(QuarantinedRecord.vendor, QuarantinedRecord.object, func.count()).group_by(
                QuarantinedRecord.vendor, QuarantinedRecord.object
            )
        ).all()
        events = dict(conn.execute(select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all())
    logs = _sync_logs(settings.data_dir / "sync-logs")
    return render_template(
        "operations.html",
        outbox=outbox,
        rows=parked,
        quarantine=quarantine,
        events=events,
        vendors=_latest_per_vendor(logs),
        logs=logs,
    )


@admin.post("/outbox/<int:row_id>/<any(retry, park):verb>")
def outbox_action(row_id: int, verb: str):
    """Retry (back to pending, dispatched on the next write-back run) or park a write by hand."""
    now = datetime.now()
    values = {"status": "pending", "available_at": None} if verb == "retry" else {"status": "parked"}
    allowed = ("parked",) if verb == "retry" else ("pending", "parked")
    user = current_user()
    with context.engine().begin() as conn:
        changed = conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.status.in_(allowed))
            .values(**values, updated_at=now)
        ).rowcount
        if changed:
            audit(conn, user.username, f"outbox.{verb}", str(row_id))
    flash(f"Write {row_id}: {verb} {'done' if changed else 'not possible in its state'}", "ok" if changed else "error")
    return redirect(url_for("admin.operations"))


@admin.get("/programs")
def programs():
    """What exists of programs: the programs defined (offered on cards) and the enrollment requests made from cards."""
    with context.engine().connect() as conn:
        offered = offered_programs(context.settings(), conn)
        requests = conn.execute(
            select(ProgramEnrollment.program, ProgramEnrollment.status, func.count()).group_by(
                ProgramEnrollment.program, ProgramEnrollment.status
            )
        ).all()
    return render_template("programs.html", programs=offered, requests=requests)


@admin.get("/audit")
def audit_page():
    with context.engine().connect() as conn:
        entries = audit_log(conn)
    return render_template("audit.html", entries=entries)


from app.web import admin_health, admin_mappings  # noqa: E402,F401  (their routes are on this blueprint)
