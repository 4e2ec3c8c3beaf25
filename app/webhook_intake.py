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

from sqlalchemy import Dialect, Engine, and_, bindparam, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.store.models import ExternalId, RecordLink, WebhookEvent
from connectors.webhook_common import VendorEvent

log = logging.getLogger(__name__)
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


class _IntakeWriter:
    """Stores the intake's rows for every request of this process, committing the requests that wait together.

    Group commit: the request that finds no write in progress becomes the writer; requests that arrive while it
    writes queue up and the next of them writes all of them in one transaction. Every request still returns only
    after its rows are committed, so nothing is acknowledged before it is durable; under concurrent load (threaded
    workers) one commit serves many requests. With one request at a time it is a plain write.

    The writer holds one driver connection for the process, in autocommit: checking one out of SQLAlchemy's pool
    and back in cost as much as the INSERT, and a batch of one row needs no BEGIN / COMMIT of its own. A connection
    that fails is dropped, and a batch that finds its connection dead (database restarted) retries once on a new one.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._writing = False
        self._engine: Engine | None = None
        self._connection = None  # the DBAPI connection, detached from the pool (its autocommit must not go back)
        self._pid = 0

    def store(self, engine: Engine, rows: list[dict]) -> list[bool]:
        """Commit `rows` (with others' waiting rows); for each row, whether it was new (else a replay)."""
        ticket = _Ticket(engine, rows)
        with self._turn:
            self._waiting.append(ticket)
            while self._writing and not ticket.settled:
                self._turn.wait()
            if not ticket.settled:
                self._writing = True
                batch = [t for t in self._waiting if t.engine is engine]
                self._waiting = [t for t in self._waiting if t.engine is not engine]
        if not ticket.settled:
            try:
                self._write(engine, batch)
            finally:
                with self._turn:
                    self._writing = False
                    self._turn.notify_all()
        return ticket.outcome()

    def _write(self, engine: Engine, batch: list[_Ticket]) -> None:
        try:
            for attempt in (1, 2):
                connection = self._connect(engine)
                try:
                    outcomes = self._insert(engine, connection.cursor(), [t.rows for t in batch])
                    break
                except engine.dialect.loaded_dbapi.Error as error:
                    disconnected = engine.dialect.is_disconnect(error, connection, None)
                    self.close()
                    if not disconnected or attempt == 2:
                        raise
                except BaseException:
                    self.close()  # an open transaction ends with the connection: nothing half-done is kept
                    raise
            for ticket, outcome in zip(batch, outcomes, strict=True):
                ticket.settle(outcome, None)
        except BaseException as error:
            for ticket in batch:
                ticket.settle(None, error)

    @staticmethod
    def _insert(engine: Engine, cursor, batch: list[list[dict]]) -> list[list[bool]]:
        sql = _intake_sql(engine.dialect)
        atomic = sum(len(rows) for rows in batch) > 1
        if atomic:
            cursor.execute("BEGIN")
        outcomes = []
        for rows in batch:
            outcome = []
            for row in rows:
                sql.insert.run(cursor, row)
                outcome.append(cursor.rowcount == 1)
                if not outcome[-1]:  # stored before, or repeated within this batch: count the replay
                    sql.count_replay.run(cursor, {"vendor": row["vendor"], "event_id": row["event_id"]})
            outcomes.append(outcome)
        if atomic:
            cursor.execute("COMMIT")
        return outcomes

    def _connect(self, engine: Engine):
        if self._pid != os.getpid():  # forked: the parent's connection is the parent's to close
            self._engine = self._connection = None
        if self._engine is not engine:
            self.close()
            pooled = engine.raw_connection()
            pooled.detach()
            engine.dialect.set_isolation_level(pooled.dbapi_connection, "AUTOCOMMIT")
            self._engine, self._connection, self._pid = engine, pooled.dbapi_connection, os.getpid()
        return self._connection

    def close(self) -> None:
        connection, self._engine, self._connection = self._connection, None, None
        if connection is not None:
            with suppress(Exception):  # closing a connection the server already dropped
                connection.close()


class _Ticket:
    """One request's rows in the writer's queue, and what became of them."""

    def __init__(self, engine: Engine, rows: list[dict]) -> None:
        self.engine, self.rows = engine, rows
        self.settled = False
        self._outcome: list[bool] | None = None
        self._error: BaseException | None = None

    def settle(self, outcome: list[bool] | None, error: BaseException | None) -> None:
        self._outcome, self._error, self.settled = outcome, error, True

    def outcome(self) -> list[bool]:
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


_writer = _IntakeWriter()


@dataclass
class Intake:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def record_events(engine: Engine, vendor: str, events: Sequence[VendorEvent], raw: bytes) -> Intake:
    """Store events not seen before (by vendor event id); count replays on the stored event.

    This runs on every webhook request, so it goes straight to the driver with SQL built once per dialect (through
    SQLAlchemy's execution layer the same statements cost more than the rest of the request together), and
    requests that arrive together share one commit (see _IntakeWriter).
    """
    if not events:
        return Intake()
    text = raw.decode("utf-8", "replace")
    clean = _free_of_nul(raw)
    common = {"vendor": vendor, "received_at": datetime.now(), "status": "received",
              "payload": text if clean else storable(text), "duplicates": 0}  # fmt: skip
    rows = [
        {**common, "event_id": e.event_id, "kind": e.kind[:64], "object": e.object[:32], "object_id": e.object_id[:128],
         "refs": json.dumps(e.extra)}
        for e in (events if clean else [storable_event(e) for e in events])
    ]  # fmt: skip
    intake = Intake()
    for row, new in zip(rows, _writer.store(engine, rows), strict=True):
        (intake.new if new else intake.duplicates).append(row["event_id"])
    return intake


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
