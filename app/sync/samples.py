"""The raw records of each object's last sync, kept a few at a time: the mapping editor previews a draft on them
instead of calling the vendor (a live pull is only the fallback, before any sync has run)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from app.store.bulk import upsert
from app.store.models import SyncSample
from app.sync.common import _utcnow

SAMPLE_RECORDS = 20


def store_sample(conn: Connection, vendor: str, obj: str, page: list[Any]) -> None:
    """Keep the first records of a sync's first page of `obj` (replacing the last sync's), as JSON."""
    records = json.loads(json.dumps([r for r in page if isinstance(r, dict)][:SAMPLE_RECORDS], default=str))
    if records:
        row = {"vendor": vendor, "object": obj, "records": records, "taken_at": _utcnow()}
        upsert(conn, SyncSample.__table__, [row], conflict=["vendor", "object"], update=["records", "taken_at"])


def last_sample(conn: Connection, vendor: str, obj: str) -> tuple[list[dict], Any] | None:
    """The stored records of the last sync of `obj` and when they were taken; None before any sync."""
    row = conn.execute(
        select(SyncSample.records, SyncSample.taken_at).where(SyncSample.vendor == vendor, SyncSample.object == obj)
    ).first()
    return (list(row.records), row.taken_at) if row else None
