"""The webhook event log's write path: every event stored, deduplicated, before its request is answered.

This runs on every webhook request, so it goes straight to the driver with SQL built once per dialect (through
SQLAlchemy's execution layer the same statements cost more than the rest of the request together), and requests
that arrive together share one commit (see _IntakeWriter). Each event row keeps only its own part of the request,
so a request's storage grows with its size, not with its size times its event count. Refused requests are logged
here too, with the reason, their source, size and SHA-256 — never their body, which anyone can make big.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Dialect, Engine, bindparam, literal_column, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from app.store.db import StoreUnavailable
from app.store.models import WebhookEvent
from connectors.webhook_common import VendorEvent


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
                       storable(event.object_id), storable(event.kind), storable(event.extra),
                       storable(event.payload))  # fmt: skip


def _free_of_nul(event: VendorEvent) -> bool:
    """No NUL in the event's fragment, raw or JSON-escaped: then no field parsed from it holds one."""
    text = event.payload or ""
    return "\x00" not in text and "\\u0000" not in text


class _IntakeWriter:
    """Stores the intake's rows for every request of this process, committing the requests that wait together.

    Group commit: requests queue their rows and one writer thread writes everything queued in one transaction,
    again and again until the queue is empty; requests that arrive while it writes go into its next batch. Every
    request still returns only after its rows are committed, so nothing is acknowledged before it is durable; under
    concurrent load (threaded workers) one commit serves many requests. With one request at a time it is a plain
    write. A request waits at most `wait` seconds: a database that is frozen or unreachable gets the request a
    StoreUnavailable (a 503, and the sender retries; rows written after all are deduplicated by event id) instead
    of a hang until gunicorn kills the worker.

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
        self._writer_pid = 0  # the process whose thread is writing (a forked child has no such thread)

    def store(self, engine: Engine, rows: list[dict], wait: float | None = None) -> list[bool]:
        """Commit `rows` (with others' waiting rows); for each row, whether it was new (else a replay)."""
        ticket = _Ticket(engine, rows)
        with self._turn:
            if self._writer_pid != os.getpid():  # forked: the parent's writer thread did not come along
                self._writing = False
            self._waiting.append(ticket)
            if not self._writing:
                self._writing, self._writer_pid = True, os.getpid()
                threading.Thread(target=self._drain, name="cse-intake-writer", daemon=True).start()
            if not self._turn.wait_for(lambda: ticket.settled, timeout=wait):
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                raise StoreUnavailable(f"the database did not answer within {wait:g} s")
        return ticket.outcome()

    def _drain(self) -> None:
        """The writer thread: write what is queued, batch by batch, until nothing is."""
        while True:
            with self._turn:
                if not self._waiting:
                    self._writing = False
                    return
                engine = self._waiting[0].engine
                batch = [t for t in self._waiting if t.engine is engine]
                self._waiting = [t for t in self._waiting if t.engine is not engine]
            self._write(engine, batch)
            with self._turn:
                self._turn.notify_all()

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
                        raise _unavailable(engine, error) from error
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
            try:
                pooled = engine.raw_connection()
            except (DBAPIError, engine.dialect.loaded_dbapi.Error) as error:
                raise StoreUnavailable(str(getattr(error, "orig", error))) from error
            pooled.detach()
            engine.dialect.set_isolation_level(pooled.dbapi_connection, "AUTOCOMMIT")
            self._engine, self._connection, self._pid = engine, pooled.dbapi_connection, os.getpid()
        return self._connection

    def close(self) -> None:
        connection, self._engine, self._connection = self._connection, None, None
        if connection is not None:
            with suppress(Exception):  # closing a connection the server already dropped
                connection.close()


def _unavailable(engine: Engine, error: Exception) -> Exception:
    """The driver's error as StoreUnavailable when it says the database is out of reach (not for bugs)."""
    dbapi = engine.dialect.loaded_dbapi
    if isinstance(error, dbapi.OperationalError | dbapi.InterfaceError):
        return StoreUnavailable(str(error))
    return error


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


def record_events(engine: Engine, vendor: str, events: Sequence[VendorEvent], wait: float | None = None) -> Intake:
    """Store events not seen before (by vendor event id), each with its own payload; count replays on the stored one.
    Raises StoreUnavailable when the database is down, or has not answered within `wait` seconds."""
    if not events:
        return Intake()
    common = {"vendor": vendor, "received_at": datetime.now(), "status": "received", "duplicates": 0}
    rows = [
        {**common, "event_id": e.event_id, "kind": e.kind[:64], "object": e.object[:32], "object_id": e.object_id[:128],
         "refs": json.dumps(e.extra), "payload": e.payload}
        for e in (event if _free_of_nul(event) else storable_event(event) for event in events)
    ]  # fmt: skip
    intake = Intake()
    for row, new in zip(rows, _writer.store(engine, rows, wait), strict=True):
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


def record_refusal(engine: Engine, vendor: str, status: str, reason: str, raw: bytes, source: str | None) -> None:
    """Log a refused request (status rejected / malformed / ignored) with why, where from, its size and hash."""
    with engine.begin() as conn:
        conn.execute(
            WebhookEvent.__table__.insert().values(
                vendor=vendor, event_id=f"{status}:{uuid.uuid4().hex}", received_at=datetime.now(), status=status,
                reason=storable(reason[:2000]), duplicates=0, source=(source or "")[:64] or None,
                body_bytes=len(raw), body_sha256=hashlib.sha256(raw).hexdigest(),
            )
        )  # fmt: skip
