"""Entering programs writes each new enrollment's `entered` history event with it (app/programs/tick._enter): one
event per entry, for engine entries and honoured card requests alike, and none more when the same scoring reruns;
an entry that would double an active enrollment fails the run."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import app.programs.tick as tick
from app.programs.tick import enroll
from app.store.models import ProgramEnrollment, program_history
from tests.programs_support import T0, book, program, scored

RESCUE = """
program: rescue
title: Rescue
entry: risk >= 40
exit:
  recovered: risk < 30
steps:
  - key: hello
    day: 0
    channel: crm_task
    text: {default: {title: "Hello {name}", body: "b"}}
"""


def _history(store) -> list[tuple]:
    with store.connect() as conn:
        columns = ("enrollment_id", "account_id", "program", "kind", "at", "dedupe_key")
        query = select(*(program_history.c[c] for c in columns)).order_by(program_history.c.enrollment_id)
        return [tuple(r) for r in conn.execute(query).all()]


def _enrollments(store) -> dict[int, int]:
    """Active enrollment id by account."""
    with store.connect() as conn:
        query = select(ProgramEnrollment.account_id, ProgramEnrollment.id).where(ProgramEnrollment.status == "active")
        return dict(conn.execute(query).all())


def test_each_entry_gets_one_entered_event_and_a_rerun_adds_none(store):
    ids = book(store, 4)
    programs = program(RESCUE)
    with store.begin() as conn:  # a CSM's request for the last account
        conn.execute(ProgramEnrollment.__table__.insert().values(
            account_id=ids[3], program="rescue", status="requested", requested_by="csm@x", source="card",
            requested_at=T0))  # fmt: skip
    frame = scored(ids, [50, 80, 10, 35])  # the last neither enters nor leaves by itself
    with store.begin() as conn:
        counts = enroll(conn, programs, frame, T0)
    assert counts["rescue"]["entered"] == 2 and counts["rescue"]["requests"] == 1
    active = _enrollments(store)
    assert sorted(active) == [ids[0], ids[1], ids[3]]
    expected = sorted((e, a, "rescue", "entered", T0, "entered") for a, e in active.items())
    assert _history(store) == expected
    with store.begin() as conn:  # the same scoring again, at the same moment: nothing new
        again = enroll(conn, programs, frame, T0)
    assert again["rescue"]["entered"] == 0 and again["rescue"]["requests"] == 0
    assert _enrollments(store) == active and _history(store) == expected


def test_an_entry_that_slipped_past_the_lock_fails_the_run_instead_of_doubling_it(store, monkeypatch):
    """Entries are written with no conflict check (the programs lock and the chunk's read of its enrollments rule a
    second active one out): were an active enrollment missed anyway, the partial unique index fails the scoring
    rather than keep two, or skip the row silently."""
    ids = book(store, 2)
    programs = program(RESCUE)
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [50, 80]), T0)
    active = _enrollments(store)
    monkeypatch.setattr(tick, "_current", lambda conn, account_ids: {})  # as if a writer had bypassed the lock
    # COPY goes through the driver on PostgreSQL: its own integrity error, not SQLAlchemy's wrapper
    with pytest.raises((IntegrityError, store.dialect.dbapi.IntegrityError)), store.begin() as conn:
        enroll(conn, programs, scored(ids, [50, 80]), T0)
    assert _enrollments(store) == active
