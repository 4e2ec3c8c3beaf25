"""The sync run: pull every vendor object through its mappings into the canonical store, incrementally and safely.

Each page of an incremental pull is loaded, quarantined and checkpointed (SyncCursor) in one transaction, so a run
killed at any point resumes from the last committed page: no gaps; and since accounts and contacts are upserts and
events are keyed by `<vendor>:<mapping>:<record id>`, re-reading creates no duplicates. A full pull (the first one,
or `--full`) may come in id order rather than change order (HubSpot's list API does), so it moves the cursor only
once it has finished; a killed full pull is simply redone. The cursor is read back minus an overlap window (5
minutes by default) because vendor clocks and the replication behind their "modified since" filters lag;
re-reading a few minutes is cheap, missing a record is not.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from app.store.bulk import upsert
from app.store.models import (
    QuarantinedRecord,
    SyncCursor,
)
from app.sync.common import _chunks, _utcnow
from app.sync.identity import enrich_accounts, load_account_batch
from app.sync.log import ObjectLog, SyncLog
from app.sync.records import load_contact_batch, load_event_batch
from app.sync.samples import store_sample
from app.sync.versions import DEFAULT_MAPPINGS_DIR, ActiveMappings, active_mappings
from connectors.mapping import (
    Mapping,
    Problem,
    apply_mapping,
    cursor_values,
    get_path,
    record_id,
)
from connectors.source import VendorSource

DEFAULT_OVERLAP = timedelta(minutes=5)
ENTITY_ORDER = {"account": 0, "contact": 1, "event": 2}

# progress(vendor, object, records in this page, object finished)
ProgressCallback = Callable[[str, str, int, bool], None]


def _object_order(source: VendorSource, mappings: list[Mapping]) -> list[tuple[str, list[Mapping]]]:
    """The source's objects that have mappings: companies first, then contacts, then activity (stable otherwise)."""
    by_object: dict[str, list[Mapping]] = {}
    for mapping in mappings:
        if mapping.direction == "pull":
            by_object.setdefault(mapping.object, []).append(mapping)
    offered = list(source.objects())
    ordered = [o for o in offered if o in by_object]
    ordered.sort(key=lambda o: (min(ENTITY_ORDER[m.entity or "event"] for m in by_object[o]), offered.index(o)))
    return [(o, sorted(by_object[o], key=lambda m: (ENTITY_ORDER[m.entity or "event"], m.name))) for o in ordered]


def _load(engine: Engine, vendor: str, mappings_dir: Path) -> ActiveMappings:
    problems: list[Problem] = []
    with engine.connect() as conn:
        found = active_mappings(conn, vendor, mappings_dir, problems)
    return ActiveMappings({vendor: found}, {vendor: problems})


def read_cursor(conn: Connection, vendor: str, obj: str) -> datetime | None:
    """The stored cursor (UTC, aware) of a vendor object, None before its first sync."""
    value = conn.scalar(select(SyncCursor.cursor).where(SyncCursor.vendor == vendor, SyncCursor.object == obj))
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_cursor(conn: Connection, vendor: str, obj: str, moment: datetime) -> None:
    record = {"vendor": vendor, "object": obj, "cursor": moment.isoformat(), "updated_at": _utcnow()}
    upsert(conn, SyncCursor.__table__, [record], conflict=["vendor", "object"], update=["cursor", "updated_at"])


def run_sync(
    engine: Engine,
    sources: list[VendorSource],
    full: bool = False,
    progress: ProgressCallback | None = None,
    *,
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR,
    overlap: timedelta = DEFAULT_OVERLAP,
    log_dir: Path | None = None,
    mappings: ActiveMappings | None = None,
) -> SyncLog:
    """Pull every source's mapped objects into the store; returns (and writes) the run's SyncLog.

    A failure in one object (the vendor down, a bug) is logged and the run goes on with the next object; the
    failed object resumes from its last committed page next time. `full` ignores cursors (a resync).
    `mappings`, when the caller loaded them to build the sources, are used as they are (parsed once per run);
    otherwise the active mappings are read from `mappings_dir` and the store.
    """
    started = time.monotonic()
    log = SyncLog(started_at=_utcnow(), full=full)
    for source in sources:
        vendor = str(source.vendor)
        active = mappings if mappings is not None else _load(engine, vendor, mappings_dir)
        log.errors.extend(f"invalid mapping: {p}" for p in active.problems.get(vendor, []))
        calls_before = source.stats.api_calls
        for obj, obj_mappings in _object_order(source, active.of(vendor)):
            _sync_object(engine, source, obj, obj_mappings, full, overlap, progress, log)
        log.api_calls[vendor] = log.api_calls.get(vendor, 0) + source.stats.api_calls - calls_before
    log.finished_at = _utcnow()
    log.duration_s = round(time.monotonic() - started, 3)
    if log_dir is None:
        from app.settings import Settings

        log_dir = Settings.from_env().data_dir / "sync-logs"
    log.write(Path(log_dir))
    return log


def sync_records(
    engine: Engine,
    source: VendorSource,
    wanted: dict[str, list[str]],
    *,
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR,
    overlap: timedelta = DEFAULT_OVERLAP,
    mappings: ActiveMappings | None = None,
) -> SyncLog:
    """Pull only the named records (by vendor object) through the same mappings and loaders as a sync.

    What a webhook needs: the few records it names, fresh, in a handful of calls, instead of an incremental pass
    over the whole vendor. Cursors do not move; the next scheduled sync reads these records again, harmlessly.
    `since` handed to `fetch` is the object's cursor (Intercom's events use it).
    """
    started = time.monotonic()
    log = SyncLog(started_at=_utcnow(), full=False)
    vendor = str(source.vendor)
    active = mappings if mappings is not None else _load(engine, vendor, mappings_dir)
    for obj, obj_mappings in _object_order(source, active.of(vendor)):
        ids = sorted(set(wanted.get(obj) or []))
        if not ids:
            continue
        entry = ObjectLog(vendor, obj, [m.name for m in obj_mappings])
        log.objects.append(entry)
        calls_before = source.stats.api_calls
        with engine.connect() as conn:
            cursor = read_cursor(conn, vendor, obj)
        try:
            page = source.fetch(obj, ids, cursor - overlap if cursor else None)
            with engine.begin() as conn:
                _load_page(conn, vendor, obj, obj_mappings, list(page), entry)
            entry.pages = 1
        except Exception as error:  # noqa: BLE001 - logged like a sync; the scheduled sync catches up
            entry.error = f"{type(error).__name__}: {error}"
        entry.api_calls = source.stats.api_calls - calls_before
    log.api_calls[vendor] = sum(e.api_calls for e in log.objects)
    log.finished_at = _utcnow()
    log.duration_s = round(time.monotonic() - started, 3)
    return log


def _sync_object(
    engine: Engine,
    source: VendorSource,
    obj: str,
    mappings: list[Mapping],
    full: bool,
    overlap: timedelta,
    progress: ProgressCallback | None,
    log: SyncLog,
) -> None:
    vendor = str(source.vendor)
    entry = ObjectLog(vendor, obj, [m.name for m in mappings])
    log.objects.append(entry)
    started, calls_before = time.monotonic(), source.stats.api_calls
    with engine.connect() as conn:
        cursor = read_cursor(conn, vendor, obj)
    since = None if full or cursor is None else cursor - overlap
    entry.since = since.isoformat() if since else None
    pulled_at = datetime.now(UTC)
    newest: datetime | None = None
    if progress:
        progress(vendor, obj, 0, False)
    try:
        for page in source.pull(obj, since):
            records = list(page)
            with engine.begin() as conn:
                if entry.pages == 0:  # what the mapping editor previews drafts on
                    store_sample(conn, vendor, obj, records)
                page_newest = _load_page(conn, vendor, obj, mappings, records, entry)
                if page_newest is not None:
                    newest = page_newest if newest is None else max(newest, page_newest)
                if since is not None and newest is not None and (cursor is None or newest > cursor):
                    # Incremental pages come oldest change first: checkpoint with the page's data.
                    cursor = newest
                    _write_cursor(conn, vendor, obj, cursor)
            entry.pages += 1
            if progress:
                progress(vendor, obj, len(records), False)
        if since is None:
            # A full pull may list in id order rather than change order, so only a finished one moves the cursor:
            # to when it started, or the newest change seen if earlier (changes made during it get re-read).
            cursor = min(pulled_at, newest) if newest is not None else pulled_at
            with engine.begin() as conn:
                _write_cursor(conn, vendor, obj, cursor)
    except Exception as error:  # noqa: BLE001 - one object failing must not stop the others
        entry.error = f"{type(error).__name__}: {error}"
        entry.reasons.append({"traceback": traceback.format_exc(limit=5)})
    finally:
        entry.cursor = cursor.isoformat() if cursor else None
        entry.api_calls = source.stats.api_calls - calls_before
        entry.duration_s = round(time.monotonic() - started, 3)
        if progress:
            progress(vendor, obj, 0, True)


def _load_page(
    conn: Connection, vendor: str, obj: str, mappings: list[Mapping], page: list[dict], entry: ObjectLog
) -> datetime | None:
    """Everything one page does inside the caller's transaction: map, resolve, load, quarantine.

    Returns the newest change time in the page (for the cursor).
    """
    entry.records += len(page)
    ids = sorted({rid for r in page if isinstance(r, dict) for m in mappings if (rid := record_id(get_path(r, m.id)))})
    for chunk in _chunks(ids):
        conn.execute(
            delete(QuarantinedRecord).where(
                QuarantinedRecord.vendor == vendor,
                QuarantinedRecord.object == obj,
                QuarantinedRecord.external_id.in_(chunk),
            )
        )
    quarantine: list[dict] = []
    for mapping in mappings:
        batch = apply_mapping(mapping, page)
        entry.skipped += len(batch.skipped_ids)
        bad = [(q.record, q.reason, q.record_id) for q in batch.quarantined]
        if mapping.entity == "account" and mapping.enrichment:
            bad += enrich_accounts(conn, vendor, batch, entry)
        elif mapping.entity == "account":
            bad += load_account_batch(conn, vendor, batch, entry)
        elif mapping.entity == "contact":
            bad += load_contact_batch(conn, vendor, batch, entry)
        else:
            bad += load_event_batch(conn, vendor, batch, entry)
        now = _utcnow()
        for record, reason, rid in bad:
            entry.quarantine(rid, mapping.name, reason)
            quarantine.append(
                {
                    "vendor": vendor, "object": obj, "external_id": rid, "reason": f"{mapping.name}: {reason}",
                    "payload": _json_safe(record), "created_at": now,
                }
            )  # fmt: skip
    if quarantine:
        conn.execute(insert(QuarantinedRecord), quarantine)

    seen = [moment.replace(tzinfo=UTC) for m in mappings for moment in cursor_values(m, page)]
    return max(seen) if seen else None


def _json_safe(record: Any) -> Any:
    return json.loads(json.dumps(record, default=str))
