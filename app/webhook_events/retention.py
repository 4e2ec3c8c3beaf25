"""How long the webhook event log keeps what it has settled: the log is for auditing recent traffic, not an archive.

Past the retention window, refused requests (ignored, rejected, malformed) are deleted and settled events
(processed, failed) lose their payload — a failed event keeps its row and reason for the admin log; the processed
events' rows — their vendor event ids, the deduplication keys — stay for a longer
window, so a request captured and replayed after its body was pruned is still recognised as a replay. Work goes in
short chunks, so webhook requests never wait behind one long statement. Events still waiting (received, processing)
are kept whatever their age: they have yet to do their work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select, update

from app.store.models import WebhookEvent

REFUSED = ("ignored", "rejected", "malformed")
SETTLED = ("processed", "failed")
CHUNK = 5000


def prune_webhook_events(engine: Engine, received_before: datetime, keys_before: datetime | None = None,
                         chunk: int = CHUNK) -> int:  # fmt: skip
    """Trim settled events received before `received_before`, and forget processed events' ids received before
    `keys_before` (default: keep them); returns how many rows went or lost their payload."""
    table = WebhookEvent.__table__
    old = table.c.received_at < received_before

    def delete_rows(ids):
        return delete(table).where(table.c.id.in_(ids))

    done = _in_chunks(engine, select(table.c.id).where(table.c.status.in_(REFUSED), old), chunk, delete_rows)
    if keys_before is not None:
        keys = select(table.c.id).where(table.c.status == "processed", table.c.received_at < keys_before)
        done += _in_chunks(engine, keys, chunk, delete_rows)
    bodies = select(table.c.id).where(table.c.status.in_(SETTLED), old, table.c.payload.is_not(None))
    done += _in_chunks(engine, bodies, chunk, lambda ids: update(table).where(table.c.id.in_(ids)).values(payload=None))
    return done


def _in_chunks(engine: Engine, rows, chunk: int, statement) -> int:
    """Apply `statement(ids)` to the rows `rows` selects, `chunk` at a time, each chunk its own transaction."""
    table = WebhookEvent.__table__
    count = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.scalars(rows.order_by(table.c.id).limit(chunk)))
            if not ids:
                return count
            conn.execute(statement(ids))
        count += len(ids)
