"""Loading the records that hang off an account: contacts (upserted by email; a deleted one is removed, contacts
carry no history of their own) and activity events (keyed by vendor, mapping and record, so a re-read replaces).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, select

from app.store.load import load_contacts, load_events, refresh_rollups
from app.store.models import (
    ActivityEvent,
    Contact,
)
from app.sync.common import _chunks
from app.sync.identity import Bad, split_resolved
from app.sync.log import ObjectLog
from connectors.mapping import (
    MappedBatch,
)

# ---- contacts -------------------------------------------------------------------------------------------------------

CONTACT_COLUMNS = [c.name for c in Contact.__table__.columns]


def load_contact_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    frame, resolved, bad = split_resolved(conn, batch)
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
        for flag in ("is_champion", "is_exec_sponsor", "unsubscribed"):
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


def load_event_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """Replace the events of every record seen (changed, deleted or no longer matching `when`), then insert.

    Quarantined records keep their last good event: a malformed update does not erase valid history.
    """
    mapping = batch.mapping
    frame, resolved, bad = split_resolved(conn, batch)
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
