"""The sync run: pull every vendor object through its mappings into the canonical store, incrementally and safely.

Why it is shaped this way:
- Each page of an incremental pull is loaded, quarantined and checkpointed (SyncCursor) in one transaction, so a
  run killed at any point resumes from the last committed page: no gaps; and since accounts and contacts are
  upserts and events are keyed by `<vendor>:<mapping>:<record id>`, re-reading creates no duplicates. A full pull
  (the first one, or `--full`) may come in id order rather than change order (HubSpot's list API does), so it
  moves the cursor only once it has finished; a killed full pull is simply redone.
- The cursor is read back minus an overlap window (5 minutes by default) because vendor clocks and the replication
  behind their "modified since" filters lag; re-reading a few minutes is cheap, missing a record is not.
- Identity resolution joins one company across vendors: ExternalId (vendor, object, id) first, then the
  normalized domain; a new company becomes account `<vendor>-<id>`.
- Deletions: an account whose last vendor record is deleted gets status "deleted" (its history stays, scoring can
  skip it, a restored record revives it); a deleted contact is removed (contacts carry no history of their own);
  a deleted record's events are removed and the day rollups rebuilt.
- A null from one vendor never erases what another vendor said about the same account or contact.
- Mappings are data: the active mapping for (vendor, name) is the latest stored MappingVersion, else the default
  file mappings/<vendor>/<name>.yaml. Saving, diffing and rolling back versions lives here too, next to its only
  consumer.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from app.store.bulk import upsert
from app.store.load import load_accounts, load_contacts, load_events, refresh_rollups
from app.store.models import (
    Account,
    ActivityEvent,
    Contact,
    ExternalId,
    MappingVersion,
    QuarantinedRecord,
    RecordLink,
    SyncCursor,
)
from connectors.mapping import (
    MappedBatch,
    Mapping,
    MappingError,
    Problem,
    apply_mapping,
    cursor_values,
    get_path,
    parse_mapping,
    record_id,
)
from connectors.source import VendorSource
from mappings import DEFAULT_DIR as DEFAULT_MAPPINGS_DIR

DEFAULT_OVERLAP = timedelta(minutes=5)
ENTITY_ORDER = {"account": 0, "contact": 1, "event": 2}
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
MAX_LOGGED_REASONS = 1000  # per object; the quarantine table keeps them all

# progress(vendor, object, records in this page, object finished)
ProgressCallback = Callable[[str, str, int, bool], None]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _chunks(items: Sequence, size: int = IN_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------------------------------
# Mapping versions
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingVersionInfo:
    """One version of a mapping. Version 0 is the default file shipped in mappings/; stored versions count from 1."""

    vendor: str
    name: str
    version: int
    author: str
    created_at: datetime | None
    content: str
    origin: str  # "default" (the file) or "stored" (MappingVersion)


def default_mapping_files(vendor: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> dict[str, Path]:
    """Default mapping files of a vendor by mapping name (the file stem)."""
    folder = Path(mappings_dir) / vendor
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()}


def mapping_history(conn: Connection, vendor: str | None = None, name: str | None = None) -> list[MappingVersionInfo]:
    """Stored versions (oldest first), numbered 1.. per (vendor, name)."""
    query = select(MappingVersion).order_by(MappingVersion.id)
    if vendor:
        query = query.where(MappingVersion.vendor == vendor)
    if name:
        query = query.where(MappingVersion.object == name)
    counters: dict[tuple[str, str], int] = {}
    out = []
    for row in conn.execute(query).mappings():
        key = (row["vendor"], row["object"])
        counters[key] = counters.get(key, 0) + 1
        out.append(
            MappingVersionInfo(
                row["vendor"], row["object"], counters[key], row["author"], row["created_at"], row["content"], "stored"
            )
        )
    return out


def mapping_versions(
    conn: Connection, vendor: str, name: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR
) -> list[MappingVersionInfo]:
    """Every version of one mapping: the default file as version 0 (when there is one), then the stored ones."""
    out = []
    default = default_mapping_files(vendor, mappings_dir).get(name)
    if default is not None:
        out.append(MappingVersionInfo(vendor, name, 0, "default", None, default.read_text(encoding="utf-8"), "default"))
    return out + mapping_history(conn, vendor, name)


def _parse_version(info: MappingVersionInfo, mappings_dir: Path) -> Mapping:
    if info.origin == "default":
        path = default_mapping_files(info.vendor, mappings_dir)[info.name]
        return parse_mapping(info.content, str(path), info.name, info.vendor)
    where = f"<stored {info.vendor}/{info.name} v{info.version}>"
    return parse_mapping(info.content, where, info.name, info.vendor)


def active_mapping(conn: Connection, vendor: str, name: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> Mapping:
    """The mapping a sync uses: the latest stored version, else the default file. KeyError when neither exists."""
    versions = mapping_versions(conn, vendor, name, mappings_dir)
    if not versions:
        raise KeyError(f"{vendor} has no mapping named {name!r}")
    return _parse_version(versions[-1], mappings_dir)


def mapping_names(conn: Connection, vendor: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> list[str]:
    """Names of every mapping of a vendor: default files plus mappings that only exist as stored versions."""
    stored = conn.execute(select(MappingVersion.object).where(MappingVersion.vendor == vendor).distinct()).scalars()
    return sorted(set(default_mapping_files(vendor, mappings_dir)) | set(stored))


def active_mappings(
    conn: Connection,
    vendor: str,
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR,
    problems: list[Problem] | None = None,
) -> list[Mapping]:
    """All active mappings of a vendor. With `problems`, an invalid one is reported there and left out instead of
    raising, so one broken mapping does not stop the vendor's other objects from syncing."""
    out = []
    for name in mapping_names(conn, vendor, mappings_dir):
        try:
            out.append(active_mapping(conn, vendor, name, mappings_dir))
        except MappingError as error:
            if problems is None:
                raise
            problems.extend(error.problems)
    return out


def active_mapping_dicts(conn: Connection, vendor: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> list[dict]:
    """The active mappings as plain YAML dicts, for connectors that request only the fields mappings read: built
    from the store, so a field added by a stored version is fetched without a deploy."""
    return [yaml.safe_load(m.content) for m in active_mappings(conn, vendor, mappings_dir, problems=[])]


def save_mapping_version(
    conn: Connection, vendor: str, name: str, content: str, author: str, now: datetime | None = None
) -> MappingVersionInfo:
    """Validate and store a new version (which becomes the active one); MappingError refuses an invalid one."""
    parse_mapping(content, f"<new version of {vendor}/{name}>", name, vendor)
    created = now or _utcnow()
    conn.execute(
        insert(MappingVersion).values(vendor=vendor, object=name, content=content, author=author, created_at=created)
    )
    return mapping_history(conn, vendor, name)[-1]


def rollback_mapping(
    conn: Connection, vendor: str, name: str, version: int, author: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR
) -> MappingVersionInfo:
    """Make an older version active again by storing its content as a new version (history is never rewritten)."""
    versions = {v.version: v for v in mapping_versions(conn, vendor, name, mappings_dir)}
    if version not in versions:
        raise KeyError(f"{vendor}/{name} has no version {version} (versions: {sorted(versions)})")
    return save_mapping_version(conn, vendor, name, versions[version].content, author)


# --------------------------------------------------------------------------------------------------------------------
# Sync log
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ObjectLog:
    """What one vendor object's sync did."""

    vendor: str
    object: str
    mappings: list[str]
    since: str | None = None
    cursor: str | None = None
    pages: int = 0
    records: int = 0
    accounts: int = 0
    contacts: int = 0
    events: int = 0
    deleted: int = 0
    skipped: int = 0
    quarantined: int = 0
    reasons: list[dict] = field(default_factory=list)
    api_calls: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def quarantine(self, external_id: str | None, mapping: str, reason: str) -> None:
        self.quarantined += 1
        if len(self.reasons) < MAX_LOGGED_REASONS:
            self.reasons.append({"external_id": external_id, "mapping": mapping, "reason": reason})


@dataclass
class SyncLog:
    """One sync run: per object records, quarantined records with reasons, API calls and duration."""

    started_at: datetime
    full: bool
    objects: list[ObjectLog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    finished_at: datetime | None = None
    duration_s: float = 0.0
    path: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and not any(o.error for o in self.objects)

    @property
    def quarantined(self) -> int:
        return sum(o.quarantined for o in self.objects)

    def object(self, vendor: str, obj: str) -> ObjectLog:
        return next(o for o in self.objects if o.vendor == vendor and o.object == obj)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return json.loads(json.dumps(data, default=str))

    def write(self, folder: Path) -> Path:
        """Persist as JSON under `folder` (settings.data_dir/sync-logs by default) and remember where."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}.json"
        self.path = str(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


# --------------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------------


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
) -> SyncLog:
    """Pull every source's mapped objects into the store; returns (and writes) the run's SyncLog.

    A failure in one object (the vendor down, a bug) is logged and the run goes on with the next object; the
    failed object resumes from its last committed page next time. `full` ignores cursors (a resync).
    """
    started = time.monotonic()
    log = SyncLog(started_at=_utcnow(), full=full)
    for source in sources:
        vendor = str(source.vendor)
        problems: list[Problem] = []
        with engine.connect() as conn:
            mappings = active_mappings(conn, vendor, mappings_dir, problems)
        log.errors.extend(f"invalid mapping: {p}" for p in problems)
        calls_before = source.stats.api_calls
        for obj, obj_mappings in _object_order(source, mappings):
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
) -> SyncLog:
    """Pull only the named records (by vendor object) through the same mappings and loaders as a sync.

    What a webhook needs: the few records it names, fresh, in a handful of calls, instead of an incremental pass
    over the whole vendor. Cursors do not move; the next scheduled sync reads these records again, harmlessly.
    `since` handed to `fetch` is the object's cursor (Intercom's events use it).
    """
    started = time.monotonic()
    log = SyncLog(started_at=_utcnow(), full=False)
    vendor = str(source.vendor)
    with engine.connect() as conn:
        mappings = active_mappings(conn, vendor, mappings_dir, [])
    for obj, obj_mappings in _object_order(source, mappings):
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
            with engine.begin() as conn:
                page_newest = _load_page(conn, vendor, obj, mappings, list(page), entry)
                if page_newest is not None:
                    newest = page_newest if newest is None else max(newest, page_newest)
                if since is not None and newest is not None and (cursor is None or newest > cursor):
                    # Incremental pages come oldest change first: checkpoint with the page's data.
                    cursor = newest
                    _write_cursor(conn, vendor, obj, cursor)
            entry.pages += 1
            if progress:
                progress(vendor, obj, len(page), False)
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
            bad += _enrich_accounts(conn, vendor, batch, entry)
        elif mapping.entity == "account":
            bad += _load_account_batch(conn, vendor, batch, entry)
        elif mapping.entity == "contact":
            bad += _load_contact_batch(conn, vendor, batch, entry)
        else:
            bad += _load_event_batch(conn, vendor, batch, entry)
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


Bad = list[tuple[dict, str, str | None]]


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _resolve_refs(
    conn: Connection, vendor: str, account_object: str, refs: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """Vendor company id → (account id, account key) through ExternalId."""
    refs = sorted({r for r in refs if r})
    out: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(refs):
        rows = conn.execute(
            select(ExternalId.external_id, Account.id, Account.key)
            .join(Account, Account.id == ExternalId.account_id)
            .where(
                ExternalId.vendor == vendor,
                ExternalId.object == account_object,
                ExternalId.external_id.in_(chunk),
            )
        )
        out.update({ext: (aid, key) for ext, aid, key in rows})
    return out


def _unresolved_reason(mapping: Mapping, ref: str | None) -> str:
    if not ref:
        return f"no company: source field '{mapping.account}' is empty"
    return (
        f"company {ref} ({mapping.vendor} {mapping.account_object}) is not in the store "
        "(not synced yet, deleted, or quarantined)"
    )


def _split_resolved(conn: Connection, batch: MappedBatch) -> tuple[pd.DataFrame, dict[str, tuple[int, str]], Bad]:
    """Keep the rows whose company resolves; the rest become quarantine entries with the reason."""
    mapping, frame = batch.mapping, batch.frame
    if frame.empty:
        return frame, {}, []
    assert mapping.account_object is not None
    resolved = _resolve_refs(conn, mapping.vendor, mapping.account_object, frame["account_ref"].dropna())
    ok = frame["account_ref"].map(lambda r: r in resolved).astype(bool)
    refused = frame.loc[~ok, ["record_id", "account_ref"]].itertuples(index=False)
    bad = [(batch.raw[rid], _unresolved_reason(mapping, ref), rid) for rid, ref in refused]
    kept = frame[ok].reset_index(drop=True)
    _link_records(conn, mapping, kept, resolved)
    return kept, resolved, bad


def _link_records(conn: Connection, mapping, frame: pd.DataFrame, resolved: dict[str, tuple[int, str]]) -> None:
    """Remember which account every contact, ticket or deal belongs to, so a webhook naming one finds it."""
    records = [
        {"vendor": mapping.vendor, "object": mapping.object, "external_id": rid, "account_id": resolved[ref][0]}
        for rid, ref in zip(frame["record_id"], frame["account_ref"], strict=True)
    ]
    for chunk in _chunks(records):
        upsert(conn, RecordLink.__table__, list(chunk), conflict=["vendor", "object", "external_id"],
               update=["account_id"])  # fmt: skip


# ---- accounts -------------------------------------------------------------------------------------------------------

ACCOUNT_COLUMNS = [c.name for c in Account.__table__.columns]


def _load_account_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """Resolve each company to an account (external id, then key, then domain, else new), upsert, link, delete."""
    mapping, frame = batch.mapping, batch.frame.copy()
    obj = mapping.object
    if not frame.empty:
        ids = frame["record_id"].tolist()
        account_of: dict[str, int] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(
                select(ExternalId.external_id, ExternalId.account_id).where(
                    ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.external_id.in_(chunk)
                )
            )
            account_of.update(dict(rows.all()))
        claimed = set(account_of.values())
        # A record without a link matches the account whose key it names (the CRM holds the product's account
        # id), else its own natural key "<vendor>-<id>" (a restored record), else by domain.
        mapped_keys = dict(zip(frame["record_id"], frame["key"], strict=True)) if "key" in frame else {}
        natural = {rid: f"{vendor}-{rid}"[:64] for rid in ids}
        wanted = {rid: mapped_keys.get(rid) or natural[rid] for rid in ids if rid not in account_of}
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(wanted.values()))):
            found.update(dict(conn.execute(select(Account.key, Account.id).where(Account.key.in_(chunk))).all()))
        for rid, key in wanted.items():
            if key in found:
                account_of[rid] = found[key]
                claimed.add(found[key])
        _match_by_domain(conn, vendor, obj, frame, account_of, claimed)
        existing = _existing_accounts(conn, set(account_of.values()))
        frame["key"] = [
            existing[account_of[rid]]["key"] if rid in account_of else wanted[rid] for rid in frame["record_id"]
        ]
        frame = _fill_from_other_vendors(conn, vendor, obj, frame, account_of, existing, mapping)
        columns = ["key", *[c for c in mapping.fields if c in ACCOUNT_COLUMNS and c != "key"]]
        # Two records resolving to one account in one page: the later (newer) one writes it.
        key_to_id = load_accounts(conn, frame[columns].drop_duplicates("key", keep="last"))
        loaded_ids = [key_to_id[k] for k in frame["key"]]
        revive = sorted({aid for aid in loaded_ids if existing.get(aid, {}).get("status") == "deleted"})
        if revive and "status" not in mapping.fields:
            for chunk in _chunks(revive):
                conn.execute(update(Account).where(Account.id.in_(chunk)).values(status="active"))
        links = [
            {"account_id": aid, "vendor": vendor, "object": obj, "external_id": rid}
            for rid, aid in zip(frame["record_id"], loaded_ids, strict=True)
        ]
        upsert(conn, ExternalId.__table__, links, conflict=["vendor", "object", "external_id"], update=["account_id"])
        entry.accounts += len(frame)
    entry.deleted += _delete_accounts(conn, vendor, obj, batch.deleted["record_id"].tolist())
    return []


def _existing_accounts(conn: Connection, account_ids: set[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for chunk in _chunks(sorted(account_ids)):
        for row in conn.execute(select(Account).where(Account.id.in_(chunk))).mappings():
            out[row["id"]] = dict(row)
    return out


def _match_by_domain(
    conn: Connection, vendor: str, obj: str, frame: pd.DataFrame, account_of: dict[str, int], claimed: set[int]
) -> None:
    """Second identity rule: the normalized domain, against accounts no other record of this vendor object owns."""
    if "domain" not in frame:
        return
    wanted = {rid: d for rid, d in zip(frame["record_id"], frame["domain"], strict=True) if rid not in account_of and d}
    if not wanted:
        return
    candidates: dict[str, list[int]] = {}
    for chunk in _chunks(sorted(set(wanted.values()))):
        rows = conn.execute(
            select(func.lower(Account.domain), Account.id)
            .where(func.lower(Account.domain).in_(chunk))
            .order_by(Account.id)
        )
        for domain, aid in rows:
            candidates.setdefault(domain, []).append(aid)
    all_ids = sorted({aid for ids in candidates.values() for aid in ids})
    owned: set[int] = set()
    for chunk in _chunks(all_ids):
        owned.update(
            conn.execute(
                select(ExternalId.account_id).where(
                    ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.account_id.in_(chunk)
                )
            ).scalars()
        )
    for rid, domain in wanted.items():
        for aid in candidates.get(domain, []):
            if aid not in owned and aid not in claimed:
                account_of[rid] = aid
                claimed.add(aid)
                break


def _fill_from_other_vendors(
    conn: Connection,
    vendor: str,
    obj: str,
    frame: pd.DataFrame,
    account_of: dict[str, int],
    existing: dict[int, dict],
    mapping: Mapping,
) -> pd.DataFrame:
    """Where another vendor object also feeds an account, an empty value here keeps the stored one, and so does
    any value of a `fallback` field (one another vendor owns, e.g. the CRM's company name over Intercom's)."""
    shared: set[int] = set()
    for chunk in _chunks(sorted(set(account_of.values()))):
        shared.update(
            conn.execute(
                select(ExternalId.account_id).where(
                    ExternalId.account_id.in_(chunk), (ExternalId.vendor != vendor) | (ExternalId.object != obj)
                )
            ).scalars()
        )
    frame = frame.astype(object)
    columns = [c for c in frame.columns if c in ACCOUNT_COLUMNS and c != "key"]
    fallback = {name for name, spec in mapping.fields.items() if spec.fallback}
    for i, rid in enumerate(frame["record_id"]):
        aid = account_of.get(rid)
        if aid is None:
            continue
        for column in columns:
            stored = existing[aid].get(column)
            yields = column in fallback and stored is not None and not pd.isna(stored)
            if (aid in shared or column == "status") and (pd.isna(frame.at[i, column]) or yields):
                frame.at[i, column] = stored
    if "status" in frame:
        frame["status"] = frame["status"].where(frame["status"].notna(), "active")
    return frame


def _delete_accounts(conn: Connection, vendor: str, obj: str, record_ids: list[str]) -> int:
    """Unlink deleted records; an account no vendor record points to any more gets status "deleted"."""
    affected: set[int] = set()
    for chunk in _chunks(sorted(set(record_ids))):
        where = (ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.external_id.in_(chunk))
        affected.update(conn.execute(select(ExternalId.account_id).where(*where)).scalars())
        conn.execute(delete(ExternalId).where(*where))
    if not affected:
        return 0
    still_linked = set(
        conn.execute(select(ExternalId.account_id).where(ExternalId.account_id.in_(sorted(affected)))).scalars()
    )
    orphans = sorted(affected - still_linked)
    for chunk in _chunks(orphans):
        conn.execute(update(Account).where(Account.id.in_(chunk)).values(status="deleted", updated_at=_utcnow()))
    return len(affected)


def _enrich_accounts(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """An account mapping with `account` (deals → renewal date, say) updates the company it points to."""
    frame, resolved, bad = _split_resolved(conn, batch)
    columns = [c for c in batch.mapping.fields if c in ACCOUNT_COLUMNS]
    for row in _records(frame):
        values = {c: row[c] for c in columns if row[c] is not None}
        if values:
            account_id = resolved[row["account_ref"]][0]
            conn.execute(update(Account).where(Account.id == account_id).values(**values, updated_at=_utcnow()))
            entry.accounts += 1
    return bad


# ---- contacts -------------------------------------------------------------------------------------------------------

CONTACT_COLUMNS = [c.name for c in Contact.__table__.columns]


def _load_contact_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    frame, resolved, bad = _split_resolved(conn, batch)
    if not frame.empty:
        frame = frame.drop_duplicates("email", keep="last").reset_index(drop=True).astype(object)
        frame["account_key"] = [resolved[ref][1] for ref in frame["account_ref"]]
        columns = [c for c in batch.mapping.fields if c in CONTACT_COLUMNS]
        stored: dict[str, dict] = {}
        for chunk in _chunks(frame["email"].tolist()):
            for row in conn.execute(select(Contact).where(Contact.email.in_(chunk))).mappings():
                stored[row["email"]] = dict(row)
        for column in columns:
            previous = frame["email"].map(lambda e, c=column: stored.get(e, {}).get(c))
            frame[column] = frame[column].where(frame[column].notna(), previous)
        for flag in ("is_champion", "is_exec_sponsor"):
            if flag in frame:
                frame[flag] = frame[flag].where(frame[flag].notna(), False)
        account_ids = {key: aid for aid, key in resolved.values()}
        load_contacts(conn, frame[["account_key", *columns]], account_ids)
        entry.contacts += len(frame)
    emails = [e for e in batch.deleted.get("email", pd.Series(dtype=object)).tolist() if e]
    for chunk in _chunks(sorted(set(emails))):
        entry.deleted += conn.execute(delete(Contact).where(Contact.email.in_(chunk))).rowcount or 0
    return bad


# ---- events ---------------------------------------------------------------------------------------------------------

EVENT_DEFAULTS: dict[str, Any] = {"contact_email": None, "feature": None, "count": 1, "value": None}


def event_external_id(vendor: str, mapping_name: str, rid: str) -> str:
    """Events are keyed by vendor, mapping and record, so a re-read replaces instead of duplicating."""
    return f"{vendor}:{mapping_name}:{rid}"


def _load_event_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """Replace the events of every record seen (changed, deleted or no longer matching `when`), then insert.

    Quarantined records keep their last good event: a malformed update does not erase valid history.
    """
    mapping = batch.mapping
    frame, resolved, bad = _split_resolved(conn, batch)
    unresolved = {rid for _, _, rid in bad}
    replaced_ids = [rid for rid in batch.frame["record_id"] if rid not in unresolved]
    replaced = [*replaced_ids, *batch.deleted["record_id"].tolist(), *batch.skipped_ids]
    external = [event_external_id(vendor, mapping.name, rid) for rid in replaced]
    gone: list[tuple[int, datetime, str]] = []
    for chunk in _chunks(external):
        where = (ActivityEvent.source == vendor, ActivityEvent.external_id.in_(chunk))
        columns = (ActivityEvent.account_id, ActivityEvent.occurred_at, ActivityEvent.external_id)
        gone += [tuple(row) for row in conn.execute(select(*columns).where(*where))]
        conn.execute(delete(ActivityEvent).where(*where))
    deleted_ids = {event_external_id(vendor, mapping.name, rid) for rid in batch.deleted["record_id"]}
    entry.deleted += sum(1 for _, _, ext in gone if ext in deleted_ids)
    if not frame.empty:
        events = frame.astype(object).copy()
        for column, default in EVENT_DEFAULTS.items():
            if column not in events:
                events[column] = default
        events["count"] = events["count"].where(events["count"].notna(), 1)
        events["account_key"] = [resolved[ref][1] for ref in events["account_ref"]]
        events["source"] = vendor
        events["external_id"] = [event_external_id(vendor, mapping.name, rid) for rid in events["record_id"]]
        emails = sorted({e for e in events["contact_email"] if e})
        contact_ids: dict[str, int] = {}
        for chunk in _chunks(emails):
            contact_ids.update(
                dict(conn.execute(select(Contact.email, Contact.id).where(Contact.email.in_(chunk))).all())
            )
        account_ids = {key: aid for aid, key in resolved.values()}
        load_events(conn, events, account_ids, contact_ids)
        entry.events += len(events)
    if gone:
        days = [moment.date() if isinstance(moment, datetime) else moment for _, moment, _ in gone]
        refresh_rollups(conn, sorted({aid for aid, _, _ in gone}), min(days), max(days))
    return bad
