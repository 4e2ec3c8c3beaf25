"""How a processing run takes stored webhook events, holds them while it lives, and what its death costs them.

One claim serves every processor of stored events (the CRM pull and rescoring in processing.py, the Segment usage
intake in app/history/segment.py), each naming the events it handles with a filter. A claim takes waiting events
that are due, and those whose run's lease lapsed, under a fresh claim id (status `processing`), so two runs never
take the same event; the run renews its lease while it lives (Heartbeat) and settles only the events still under
its claim id.

The attempt is counted when the event is claimed, not when the run settles it: a run that dies — kill -9, out of
memory, a vendor SDK that segfaults — has used it too, and an event that crashes every run that takes it ends
`failed` with the reason after the policy's attempts instead of taking the worker down forever. So that a poison
event does not use up its batch mates' attempts, an event whose run died twice or more is taken alone.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.sql import ColumnElement

from app.store.models import WebhookEvent

log = logging.getLogger(__name__)
TABLE = WebhookEvent.__table__
CLAIM_LEASE = timedelta(minutes=10)
# An event whose run died this often (attempts counted at claim) is a suspect: it is taken alone.
SUSPECT_AFTER = 2


@dataclass(frozen=True)
class RetryPolicy:
    """How a run holds its events and what it does with those it could not process."""

    lease: timedelta = CLAIM_LEASE
    max_attempts: int = 5
    backoff: timedelta = timedelta(seconds=60)
    backoff_cap: timedelta = timedelta(hours=1)

    @classmethod
    def from_settings(cls, settings) -> RetryPolicy:
        return cls(timedelta(seconds=settings.webhook_lease_seconds), settings.webhook_max_attempts,
                   timedelta(seconds=settings.webhook_retry_seconds))  # fmt: skip

    def delay(self, attempts: int) -> timedelta:
        """Exponential: backoff, 2 × backoff, 4 × … up to the cap."""
        return min(self.backoff * 2 ** max(attempts - 1, 0), self.backoff_cap)


@dataclass
class Claim:
    """The events one run took: their rows as claimed (`attempts` already counts this run), under `id`."""

    id: str
    rows: list
    isolated: bool = False  # a suspect taken alone (see the module's docstring)
    exhausted: int = 0  # events whose runs died with their last attempt: moved to `failed` by this claim

    @property
    def mine(self) -> ColumnElement[bool]:
        """The rows this run still holds: another run took over those whose lease lapsed (this one froze)."""
        return and_(TABLE.c.claim == self.id, TABLE.c.status == "processing")

    def held(self, engine: Engine, lease: timedelta) -> Heartbeat:
        return Heartbeat(engine, self.id, lease)


def due(now: datetime) -> ColumnElement[bool]:
    """Waiting and not backing off after a failed attempt."""
    return and_(TABLE.c.status == "received",
                or_(TABLE.c.next_attempt_at.is_(None), TABLE.c.next_attempt_at <= now))  # fmt: skip


def claim_events(engine: Engine, policy: RetryPolicy, limit: int, which: ColumnElement[bool]) -> Claim:
    """Take up to `limit` events matching `which` that are due or whose run's lease lapsed; a suspect alone."""
    now, claim = datetime.now(), Claim(uuid.uuid4().hex, [])
    lapsed = and_(TABLE.c.status == "processing", TABLE.c.processed_at < now - policy.lease, which)
    with engine.begin() as conn:
        claim.exhausted = _fail_exhausted(conn, lapsed, policy, now)
        suspect = and_(lapsed, TABLE.c.attempts >= SUSPECT_AFTER)
        ids = _first(conn, suspect, 1)
        claim.isolated, takeable = bool(ids), suspect
        if not ids:
            takeable = or_(and_(due(now), which), lapsed)
            ids = _first(conn, takeable, limit)
        if not ids:
            return claim
        conn.execute(update(TABLE).where(TABLE.c.id.in_(ids), takeable).values(
            status="processing", processed_at=now, claim=claim.id, attempts=TABLE.c.attempts + 1))  # fmt: skip
        claim.rows = conn.execute(select(TABLE).where(TABLE.c.claim == claim.id).order_by(TABLE.c.id)).all()
    return claim


def _first(conn, where: ColumnElement[bool], limit: int) -> list[int]:
    return list(conn.execute(select(TABLE.c.id).where(where).order_by(TABLE.c.id).limit(limit)).scalars())


def _fail_exhausted(conn, lapsed: ColumnElement[bool], policy: RetryPolicy, now: datetime) -> int:
    """Events whose run died on their last attempt: `failed`, with why, instead of another run to crash."""
    reason = (f"the run of its last attempt ({policy.max_attempts} of {policy.max_attempts}) stopped without "
              "finishing it: the worker crashed or was killed while processing it")  # fmt: skip
    exhausted = and_(lapsed, TABLE.c.attempts >= policy.max_attempts)
    done = conn.execute(update(TABLE).where(exhausted).values(
        status="failed", reason=reason, processed_at=now, claim=None, next_attempt_at=None))  # fmt: skip
    if done.rowcount:
        log.error("%d webhook event(s) failed: the runs processing them kept dying", done.rowcount)
    return done.rowcount


class Heartbeat:
    """Renews a run's lease while the run is alive, so a long run keeps its events; a killed run stops renewing,
    its lease lapses and the next run takes the events."""

    def __init__(self, engine: Engine, claim: str, lease: timedelta) -> None:
        self.engine, self.claim, self.every = engine, claim, lease.total_seconds() / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{claim[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(TABLE).where(TABLE.c.claim == self.claim, TABLE.c.status == "processing")
                                 .values(processed_at=datetime.now()))  # fmt: skip
            except Exception:  # noqa: BLE001 - the database is down: the next beat tries again
                log.warning("could not renew the lease of webhook run %s", self.claim, exc_info=True)
