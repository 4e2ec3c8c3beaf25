"""Webhook events: stored raw and deduplicated on arrival, processed later as one coalesced rescoring.

The web request only verifies, stores and schedules, so it answers in milliseconds; the processing job pulls
fresh data for the vendors involved, rescores every account the waiting events touch once, and dispatches the
write-back. Events wait in the database with status `received` until a processing run takes them, so a Redis
outage delays them and loses none (the scheduler picks them up every minute).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Dialect, Engine, and_, bindparam, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.store.models import ExternalId, RecordLink, WebhookEvent
from connectors.webhook_common import VendorEvent

log = logging.getLogger(__name__)
T = TypeVar("T")
COALESCE_KEY = "cse:webhooks:processing-scheduled"
CLAIM_LEASE = timedelta(minutes=10)
# If a scheduled run never starts (its worker died), the key expires so later events schedule a new one.
COALESCE_TTL_SECONDS = 120
# Webhook object names → the vendor object names our mappings (and so ExternalId / RecordLink) use.
OBJECT_NAMES = {
    "hubspot": {"company": "companies", "contact": "contacts", "deal": "deals", "ticket": "tickets"},
    "intercom": {"company": "companies", "contact": "contacts", "user": "contacts", "lead": "contacts",
                 "conversation": "conversations"},
    "salesforce": {},
}  # fmt: skip
# Reference fields of an event that name the company directly: (vendor object of the id).
REFERENCES = {"AccountId": "Account", "WhatId": "Account"}


def storable(value):
    """PostgreSQL text and JSON cannot hold NUL characters; anything a sender put there is replaced, not refused."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def storable_event(event: VendorEvent) -> VendorEvent:
    return VendorEvent(storable(event.event_id), storable(event.tenant), storable(event.object),
                       storable(event.object_id), storable(event.kind), storable(event.extra))  # fmt: skip


def _free_of_nul(raw: bytes) -> bool:
    """No NUL in the body, raw or JSON-escaped: then no field parsed from it holds one (XML cannot carry one)."""
    return b"\x00" not in raw and b"\\u0000" not in raw


class _HeldConnection(threading.local):
    """The intake's own driver connection, held for the life of the worker thread, in autocommit.

    Checking a connection out of SQLAlchemy's pool and back in (with its reset) cost as much as the INSERT itself,
    and a one-event request needs no BEGIN / COMMIT round trips: its single INSERT commits itself. Requests with
    several events run in one explicit transaction. A connection that fails is dropped, and a request that finds
    its connection dead (database restarted) retries once on a new one.
    """

    engine: Engine | None = None
    connection = None  # the DBAPI connection, detached from the pool (its autocommit must not go back there)
    pid = 0

    def _connect(self, engine: Engine):
        if self.pid != os.getpid():  # forked: the parent's connection is the parent's to close
            self.engine = self.connection = None
        if self.engine is not engine:
            self.close()
            pooled = engine.raw_connection()
            pooled.detach()
            engine.dialect.set_isolation_level(pooled.dbapi_connection, "AUTOCOMMIT")
            self.engine, self.connection, self.pid = engine, pooled.dbapi_connection, os.getpid()
        return self.connection

    def close(self) -> None:
        connection, self.engine, self.connection = self.connection, None, None
        if connection is not None:
            with suppress(Exception):  # closing a connection the server already dropped
                connection.close()

    def run(self, engine: Engine, work: Callable[[Any], T], atomic: bool) -> T:
        """`work(cursor)`, inside BEGIN … COMMIT when `atomic`, each statement committing itself otherwise."""
        for attempt in (1, 2):
            connection = self._connect(engine)
            try:
                cursor = connection.cursor()
                if not atomic:
                    return work(cursor)
                cursor.execute("BEGIN")
                result = work(cursor)
                cursor.execute("COMMIT")
                return result
            except engine.dialect.loaded_dbapi.Error as error:
                disconnected = engine.dialect.is_disconnect(error, connection, None)
                self.close()
                if not disconnected or attempt == 2:
                    raise
            except BaseException:
                self.close()  # an open transaction ends with the connection: nothing half-done is kept
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")


_held = _HeldConnection()


@dataclass
class Intake:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def record_events(engine: Engine, vendor: str, events: Sequence[VendorEvent], raw: bytes) -> Intake:
    """Store events not seen before (by vendor event id); count replays on the stored event.

    This runs on every webhook request, so it goes straight to the driver with SQL built once per dialect: through
    SQLAlchemy's execution layer the same two statements cost more than the rest of the request together.
    """
    if not events:
        return Intake()
    sql = _intake_sql(engine.dialect)
    text = raw.decode("utf-8", "replace")
    clean = _free_of_nul(raw)
    common = {"vendor": vendor, "received_at": datetime.now(), "status": "received",
              "payload": text if clean else storable(text), "duplicates": 0}  # fmt: skip
    events = events if clean else [storable_event(e) for e in events]

    def store(cursor) -> Intake:
        intake = Intake()
        for event in events:
            row = {**common, "event_id": event.event_id, "kind": event.kind[:64], "object": event.object[:32],
                   "object_id": event.object_id[:128], "refs": json.dumps(event.extra)}  # fmt: skip
            sql.insert.run(cursor, row)
            if cursor.rowcount == 1:
                intake.new.append(event.event_id)
                continue
            intake.duplicates.append(event.event_id)  # stored before, or repeated within this request
            sql.count_replay.run(cursor, {"vendor": vendor, "event_id": event.event_id})
        return intake

    return _held.run(engine, store, atomic=len(events) > 1)


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once; positional drivers (sqlite3) take a tuple in `order`, the others a dict."""

    sql: str
    order: tuple[str, ...] | None

    @classmethod
    def compile(cls, statement, dialect: Dialect) -> _Prepared:
        compiled = statement.compile(dialect=dialect)
        return cls(compiled.string, tuple(compiled.positiontup) if compiled.positional else None)

    def run(self, cursor, values: dict) -> None:
        cursor.execute(self.sql, values if self.order is None else tuple(values[name] for name in self.order))


@dataclass(frozen=True)
class _IntakeSql:
    insert: _Prepared  # INSERT … ON CONFLICT (vendor, event_id) DO NOTHING
    count_replay: _Prepared


@functools.cache
def _intake_sql(dialect: Dialect) -> _IntakeSql:
    table = WebhookEvent.__table__
    columns = ("vendor", "event_id", "received_at", "status", "payload", "kind", "object", "object_id", "refs",
               "duplicates")  # fmt: skip
    module = postgresql if dialect.name == "postgresql" else sqlite
    insert = module.insert(table).values({name: bindparam(name) for name in columns})
    replay = (
        update(table)
        .where(table.c.vendor == bindparam("vendor"), table.c.event_id == bindparam("event_id"))
        .values(duplicates=table.c.duplicates + literal_column("1"))
    )
    return _IntakeSql(
        _Prepared.compile(insert.on_conflict_do_nothing(index_elements=["vendor", "event_id"]), dialect),
        _Prepared.compile(replay, dialect),
    )


def record_refusal(engine: Engine, vendor: str, status: str, reason: str, raw: bytes) -> None:
    """Keep a refused request in the log (status rejected / malformed / ignored) with why, for the admins."""
    with engine.begin() as conn:
        conn.execute(
            WebhookEvent.__table__.insert().values(
                vendor=vendor, event_id=f"{status}:{uuid.uuid4().hex}", received_at=datetime.now(), status=status,
                reason=storable(reason[:2000]), payload=storable(raw[:65536].decode("utf-8", "replace")), duplicates=0,
            )
        )  # fmt: skip


# Objects whose records a webhook about this vendor object should fetch, besides the object itself.
ALSO_FETCH = {("intercom", "contacts"): ("events",)}


def wanted_records(rows) -> dict[str, dict[str, list[str]]]:
    """vendor → object → record ids the waiting events name (and their companies, and a person's events)."""
    wanted: dict[str, dict[str, set[str]]] = {}
    for row in rows:
        objects = wanted.setdefault(row.vendor, {})
        obj = OBJECT_NAMES.get(row.vendor, {}).get(row.object, row.object)
        if row.object_id:
            objects.setdefault(obj, set()).add(row.object_id)
            for extra in ALSO_FETCH.get((row.vendor, obj), ()):
                objects.setdefault(extra, set()).add(row.object_id)
        refs = row.refs or {}
        for key, value in refs.items():
            if key in REFERENCES and value:
                objects.setdefault(REFERENCES[key], set()).add(value)
        for company in refs.get("company_ids") or []:
            objects.setdefault("companies", set()).add(company)
    return {v: {o: sorted(ids) for o, ids in objects.items()} for v, objects in wanted.items()}


def _accounts_for(engine: Engine, rows) -> dict[int, list[int]]:
    """Event row id → account ids, through the company links and the record links the sync keeps."""
    found: dict[int, list[int]] = {}
    with engine.connect() as conn:
        for row in rows:
            names = OBJECT_NAMES.get(row.vendor, {})
            keys = [(names.get(row.object, row.object), row.object_id)]
            refs = row.refs or {}
            keys += [(REFERENCES[k], v) for k, v in refs.items() if k in REFERENCES and v]
            keys += [("companies", c) for c in refs.get("company_ids") or []]
            ids: set[int] = set()
            for obj, external_id in keys:
                for table in (ExternalId, RecordLink):
                    ids.update(
                        conn.execute(
                            select(table.account_id).where(
                                table.vendor == row.vendor, table.object == obj, table.external_id == external_id
                            )
                        ).scalars()
                    )
            found[row.id] = sorted(ids)
    return found


@dataclass
class ProcessResult:
    events: int = 0
    accounts: list[int] = field(default_factory=list)
    unresolved: int = 0


def process_received(
    engine: Engine,
    pull: Callable[[dict[str, dict[str, list[str]]]], None],
    rescore_accounts: Callable[[list[int]], None],
    limit: int = 10_000,
) -> ProcessResult:
    """Take the waiting events: pull fresh data for the records they name, rescore each touched account once.

    The events are claimed first (status `processing`, the claim time as lease), so two runs at once never take
    the same event; a run that died leaves its claim to expire and the events to the next run.
    """
    table = WebhookEvent.__table__
    claim = datetime.now()
    expired = and_(table.c.status == "processing", table.c.processed_at < claim - CLAIM_LEASE)
    waiting = or_(table.c.status == "received", expired)
    with engine.begin() as conn:
        ids = [r for (r,) in conn.execute(select(table.c.id).where(waiting).order_by(table.c.id).limit(limit))]
        if ids:
            conn.execute(update(table).where(table.c.id.in_(ids), waiting).values(status="processing",
                                                                                 processed_at=claim))  # fmt: skip
        query = select(table).where(table.c.status == "processing", table.c.processed_at == claim)
        rows = conn.execute(query.order_by(table.c.id)).all() if ids else []
    result = ProcessResult(events=len(rows))
    if not rows:
        return result
    pull(wanted_records(rows))
    accounts = _accounts_for(engine, rows)
    result.accounts = sorted({a for ids in accounts.values() for a in ids})
    result.unresolved = sum(1 for ids in accounts.values() if not ids)
    if result.accounts:
        rescore_accounts(result.accounts)
    now = datetime.now()
    with engine.begin() as conn:
        for row in rows:
            reason = None if accounts[row.id] else "no account in the store matches this record"
            conn.execute(
                update(table)
                .where(table.c.id == row.id)
                .values(status="processed", processed_at=now, account_ids=accounts[row.id], reason=reason)
            )
    return result


class InProcessCoalescer:
    """The embedded mode's stand-in for the queue: one run for a burst of events, runs one at a time.

    A run scheduled but not yet started takes every event received until it starts; an event that arrives
    during a run schedules the next one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._pending = False

    def schedule(self, delay: float, run: Callable[[], object]) -> bool:
        with self._lock:
            if self._pending:
                return False
            self._pending = True
        timer = threading.Timer(delay, self._run, args=(run,))
        timer.daemon = True
        timer.start()
        return True

    def _run(self, run: Callable[[], object]) -> None:
        with self._running:
            with self._lock:
                self._pending = False
            try:
                run()
            except Exception:  # noqa: BLE001 - the events stay claimable; the next run retries them
                log.exception("processing webhook events failed")


class RecentlyScheduled:
    """Per web process: skip the Redis round trip when this process scheduled a run a moment ago.

    Under load that saves a call per request; the gap it opens (a run that started just before an event came in)
    is closed by the run itself, which schedules another when it finishes with events still waiting.
    """

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self._at = 0.0

    def fresh(self) -> bool:
        return time.monotonic() - self._at < self.seconds

    def mark(self) -> None:
        self._at = time.monotonic()


def schedule_processing_on_redis(
    connection, queue, delay_seconds: float, job: Callable | str, recent: RecentlyScheduled | None = None
) -> bool:
    """Enqueue one processing job unless one is already waiting (SET NX coalesces a burst into one run).

    The waiting job takes every event received before it starts, so events that arrive while it waits in the
    queue ride along; `delay_seconds` > 0 widens that window on purpose, at the cost of latency.
    """
    if recent is not None and recent.fresh():
        return False
    scheduled = connection.set(COALESCE_KEY, "1", nx=True, ex=COALESCE_TTL_SECONDS + int(delay_seconds))
    if recent is not None:
        recent.mark()  # a run is waiting now, whether this call or another process scheduled it
    if not scheduled:
        return False
    job_id = f"process-webhooks-{uuid.uuid4().hex[:12]}"
    if delay_seconds > 0:
        queue.enqueue_in(timedelta(seconds=delay_seconds), job, job_id=job_id)
    else:
        queue.enqueue(job, job_id=job_id)
    return True


def received_waiting(engine: Engine) -> bool:
    """Events still waiting after a run: they arrived while it ran, and need the next one."""
    table = WebhookEvent.__table__
    with engine.connect() as conn:
        return conn.execute(select(table.c.id).where(table.c.status == "received").limit(1)).first() is not None


def release_coalescing(connection) -> None:
    """Called as a processing run starts, so events that arrive during the run schedule the next one."""
    connection.delete(COALESCE_KEY)
