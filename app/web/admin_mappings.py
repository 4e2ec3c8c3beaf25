"""The mapping editor: validation as you type (the loader `cse mappings validate` uses), a preview of the draft on a
few records next to the active mapping's result (the raw records the last sync stored, else a live pull), a diff,
save with author, history and rollback. A saved version is the active one, so the next sync uses it."""

from __future__ import annotations

import difflib
from itertools import islice
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from app.numbers import whole_number
from app.users import audit
from app.web import context
from app.web.admin import admin
from app.web.auth import current_user
from connectors.registry import vendor_names

# The sync and mapping modules load pandas, so they are imported in the handlers: the web process that answers
# webhooks starts without them.
PREVIEW_RECORDS = 5
MAX_MAPPING_BYTES = 200_000


def _known(vendor: str, name: str) -> list:
    """The versions of a mapping that exists (404 otherwise)."""
    from app.sync.versions import mapping_versions, mappings_dir_of

    if vendor not in vendor_names():
        abort(404)
    with context.engine().connect() as conn:
        versions = mapping_versions(conn, vendor, name, mappings_dir_of(context.settings()))
    if not versions:
        abort(404)
    return versions


def _draft() -> str:
    data = request.get_json(silent=True) if request.is_json else None
    text = (data or {}).get("content") if data is not None else request.form.get("content")
    if not isinstance(text, str) or len(text.encode()) > MAX_MAPPING_BYTES:
        abort(400)
    return text.replace("\r\n", "\n")


def _problems(text: str, vendor: str, name: str) -> list[dict[str, Any]]:
    from connectors.mapping import MappingError, parse_mapping

    try:
        parse_mapping(text, f"{vendor}/{name}.yaml", name, vendor)
    except MappingError as error:
        return [{"line": p.line, "field": p.field, "message": p.message, "text": str(p)} for p in error.problems]
    return []


@admin.get("/mappings")
def mappings():
    from app.sync.versions import mapping_names, mappings_dir_of

    directory = mappings_dir_of(context.settings())
    with context.engine().connect() as conn:
        listed = {vendor: mapping_names(conn, vendor, directory) for vendor in vendor_names()}
    return render_template("mappings.html", listed=listed)


@admin.get("/mappings/<vendor>/<name>")
def mapping(vendor: str, name: str):
    versions = _known(vendor, name)
    return render_template("mapping_editor.html", vendor=vendor, name=name, versions=versions, active=versions[-1])


@admin.post("/mappings/<vendor>/<name>/validate")
def validate(vendor: str, name: str):
    _known(vendor, name)
    problems = _problems(_draft(), vendor, name)
    return jsonify({"valid": not problems, "problems": problems})


@admin.post("/mappings/<vendor>/<name>/diff")
def diff(vendor: str, name: str):
    active = _known(vendor, name)[-1]
    lines = difflib.unified_diff(
        active.content.splitlines(), _draft().splitlines(), f"active (v{active.version})", "draft", lineterm=""
    )
    return jsonify({"diff": "\n".join(lines)})


def _sample(vendor: str, active, draft) -> tuple[list[dict], str]:
    """A few raw records of the draft's object and where they came from: the last sync's stored ones, else (before
    any sync, or when the admin asks for fresh ones) a live pull."""
    from app.sync.samples import last_sample

    if not (request.get_json(silent=True) or {}).get("live"):
        with context.engine().connect() as conn:
            stored = last_sample(conn, vendor, draft.object)
        if stored:
            records, taken_at = stored
            return records[:PREVIEW_RECORDS], f"the last sync of {draft.object} ({taken_at:%Y-%m-%d %H:%M} UTC)"
    return _pull(vendor, active, draft), f"a live pull of {draft.object}"


def _pull(vendor: str, active, draft) -> list[dict]:
    """A few records pulled live through the vendor's connector, asking for the fields both mappings read."""
    from app.sources import build_sources
    from app.sync.versions import ActiveMappings

    settings = context.settings()
    mappings = ActiveMappings({vendor: [active, draft]}, {vendor: []})
    source = build_sources(settings, vendor, context.engine(), mappings)[0]
    try:
        records: list[dict] = []
        for page in islice(source.pull(draft.object, None), 3):
            records.extend(page)
            if len(records) >= PREVIEW_RECORDS:
                break
        return records[:PREVIEW_RECORDS]
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()


def _canonical(mapping, records: list[dict]) -> dict[str, Any]:
    """What the mapping makes of the records: the canonical rows (as text) and the quarantined ones."""
    from connectors.mapping import apply_mapping

    batch = apply_mapping(mapping, records)
    frame = batch.frame.astype(object).where(batch.frame.notna(), None)
    rows = [{k: (None if v is None else str(v)) for k, v in row.items()} for row in frame.to_dict("records")]
    return {
        "columns": list(frame.columns),
        "rows": rows,
        "quarantined": [{"id": q.record_id, "reason": q.reason} for q in batch.quarantined],
    }


@admin.post("/mappings/<vendor>/<name>/preview")
def preview(vendor: str, name: str):
    from app.sync.versions import active_mapping, mappings_dir_of
    from connectors.mapping import parse_mapping

    _known(vendor, name)
    text = _draft()
    problems = _problems(text, vendor, name)
    if problems:
        return jsonify({"problems": problems}), 422
    directory = mappings_dir_of(context.settings())
    with context.engine().connect() as conn:
        active = active_mapping(conn, vendor, name, directory)
    draft = parse_mapping(text, f"{vendor}/{name}.yaml", name, vendor)
    if draft.direction != "pull":
        return jsonify({"problems": [], "error": "only pull mappings preview on sample records"}), 422
    try:
        records, sample = _sample(vendor, active, draft)
    except Exception as error:  # noqa: BLE001 - any failure to reach the vendor is shown, not raised
        return jsonify(
            {"problems": [], "error": f"could not pull sample records: {type(error).__name__}: {error}"}
        ), 502
    return jsonify(
        {
            "records": len(records),
            "sample": sample,
            "active": _canonical(active, records),
            "draft": _canonical(draft, records),
        }
    )


@admin.post("/mappings/<vendor>/<name>/save")
def save(vendor: str, name: str):
    from app.sync.versions import save_mapping_version
    from connectors.mapping import MappingError

    _known(vendor, name)
    text = _draft()
    user = current_user()
    try:
        with context.engine().begin() as conn:
            info = save_mapping_version(conn, vendor, name, text, user.username)
            audit(conn, user.username, "mapping.save", f"{vendor}/{name}", {"version": info.version})
    except MappingError as error:
        flash("Not saved: " + "; ".join(str(p) for p in error.problems), "error")
        return redirect(url_for("admin.mapping", vendor=vendor, name=name))
    flash(f"Saved {vendor}/{name} as version {info.version}; the next sync uses it.", "ok")
    return redirect(url_for("admin.mapping", vendor=vendor, name=name))


@admin.post("/mappings/<vendor>/<name>/rollback")
def rollback(vendor: str, name: str):
    from app.sync.versions import mappings_dir_of, rollback_mapping
    from connectors.mapping import MappingError

    _known(vendor, name)
    version = whole_number(request.form.get("version"))
    user = current_user()
    if version is None:
        abort(400)
    try:
        with context.engine().begin() as conn:
            info = rollback_mapping(conn, vendor, name, version, user.username, mappings_dir_of(context.settings()))
            audit(
                conn,
                user.username,
                "mapping.rollback",
                f"{vendor}/{name}",
                {"to": version, "version": info.version},
            )
    except (KeyError, MappingError) as error:
        flash(f"Not rolled back: {error}", "error")
        return redirect(url_for("admin.mapping", vendor=vendor, name=name))
    flash(f"Version {version} of {vendor}/{name} is active again (stored as version {info.version}).", "ok")
    return redirect(url_for("admin.mapping", vendor=vendor, name=name))
