"""How long the webhook event log keeps what it has settled: the log is for auditing recent traffic, not an archive.

Settled events (processed, and the refused: ignored, rejected, malformed) older than the retention window are
deleted in short chunks, so webhook requests never wait behind one long DELETE. Events still waiting (received,
processing) are kept whatever their age: they have yet to do their work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select

from app.store.models import WebhookEvent

SETTLED = ("processed", "ignored", "rejected", "malformed")
CHUNK = 5000


def prune_webhook_events(engine: Engine, received_before: datetime, chunk: int = CHUNK) -> int:
    """Delete settled events received before `received_before`; returns how many went."""
    table = WebhookEvent.__table__
    stale = select(table.c.id).where(table.c.status.in_(SETTLED), table.c.received_at < received_before)
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.scalars(stale.order_by(table.c.id).limit(chunk)))
            if not ids:
                return deleted
            conn.execute(delete(table).where(table.c.id.in_(ids)))
        deleted += len(ids)
