"""A round written by parallel connections (PostgreSQL, app/programs/tick._write): the same rows as the tick's own
connection writes, each account's rows committed together, a lost bucket sent by the next tick and nothing twice,
and concurrent ticks still one after another."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

import app.programs.tick as tick_module
from app.programs.tick import Limits, enroll, run_tick
from app.store.models import Action, ExternalId, OutboxRow, ProgramEnrollment, program_history
from tests.programs_support import T0, book, program, scored, sent, side_by_side

# Two steps due at once (two rounds in one tick), a control group (held rows) and a CSM task each.
TWO_STEPS = """
program: {key}
title: Two steps
entry: risk >= 40
holdout: 0.3
steps:
  - key: call
    day: 0
    channel: crm_task
    text: {{default: {{title: "Call {{name}}", body: "ARR {{arr}}"}}}}
  - key: recap
    day: 0
    after: previous
    channel: crm_task
    text: {{default: {{title: "Recap {{name}}", body: "Seats {{seats_active}}"}}}}
"""
LIMITS = Limits(messages_per_week=2, task_budget_per_csm=1000)
N = 40


@pytest.fixture
def postgres(store):
    if store.dialect.name != "postgresql":
        pytest.skip("parallel writers are PostgreSQL's (SQLite has one writer)")
    return store


@pytest.fixture
def parallel(monkeypatch):
    """Every round, however small, written by the parallel writers."""
    monkeypatch.setattr(tick_module, "PARALLEL_MIN_ROWS", 1)


def _enter(store, key: str, ids: list[int]) -> dict:
    programs = program(TWO_STEPS.format(key=key))
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [50] * len(ids)), T0)
    return programs


def _tick(store, programs, writers: int):
    with store.begin() as conn:
        return run_tick(conn, programs, T0, LIMITS, writers)


def _written(store, key: str) -> dict:
    """What the tick wrote for program `key`, without the ids that differ between two programs."""
    with store.connect() as conn:
        events = conn.execute(
            select(program_history.c.account_id, program_history.c.kind, program_history.c.step, program_history.c.at)
            .where(program_history.c.program == key)
        ).all()  # fmt: skip
        actions = conn.execute(
            select(Action.account_id, Action.step, Action.status, Action.payload).where(Action.playbook == key)
        ).all()
        outbox = [row for row in conn.execute(
            select(OutboxRow.account_id, OutboxRow.vendor, OutboxRow.operation, OutboxRow.payload)
        ) if row.payload["program"] == key]  # fmt: skip
        moved = conn.execute(
            select(ProgramEnrollment.account_id, ProgramEnrollment.status, ProgramEnrollment.step,
                   ProgramEnrollment.holdout, ProgramEnrollment.last_step_at, ProgramEnrollment.ended_at)
            .where(ProgramEnrollment.program == key)
        ).all()  # fmt: skip

    def plain(payload: dict) -> tuple:  # the program's own key and ids aside
        kept = {
            k: str(v).replace(key, "<program>") for k, v in payload.items() if k not in ("enrollment_id", "dedupe_key")
        }
        return tuple(sorted(kept.items()))

    return {
        "events": sorted(events),
        "actions": sorted((a, s, st, plain(p)) for a, s, st, p in actions),
        "outbox": sorted((a, v, o, plain(p)) for a, v, o, p in outbox),
        "enrollments": sorted(moved),
    }


def test_parallel_writers_write_what_the_tick_connection_writes(postgres, parallel):
    ids = book(postgres, N)
    with postgres.begin() as conn:  # one account without a CRM company: its tasks are written without target
        conn.execute(delete(ExternalId).where(ExternalId.account_id == ids[3]))
    # The same program under two keys: the control group is drawn by program, so give both the same draw.
    alone, side_by_side = _enter(postgres, "alone", ids), _enter(postgres, "split", ids)
    with postgres.begin() as conn:
        held = dict(conn.execute(select(ProgramEnrollment.account_id, ProgramEnrollment.holdout)
                                 .where(ProgramEnrollment.program == "alone")).all())  # fmt: skip
        for account, holdout in held.items():
            conn.execute(ProgramEnrollment.__table__.update()
                         .where(ProgramEnrollment.program == "split", ProgramEnrollment.account_id == account)
                         .values(holdout=holdout))  # fmt: skip
    one = _tick(postgres, alone, writers=1)
    two = _tick(postgres, side_by_side, writers=2)
    assert (one.sent, one.held, one.outbox_rows, one.completed) == (two.sent, two.held, two.outbox_rows, two.completed)
    assert one.sent > 0 and one.held > 0  # both kinds of rows were written
    first, second = _written(postgres, "alone"), _written(postgres, "split")
    assert second == first
    assert {s for _, _, s, _ in first["actions"]} == {"released", "no_target"}
    assert len(first["events"]) == 2 * N + N  # entered, and two steps each (sent or held)


def test_a_lost_bucket_is_sent_by_the_next_tick_and_nothing_twice(postgres, parallel, monkeypatch):
    ids = book(postgres, N)
    programs = _enter(postgres, "split", ids)
    lost_bucket = ids[0] % 2
    write_part = tick_module._write_part

    def lose_one_bucket(conn, due, *args):
        if (due["account_id"] % 2 == lost_bucket).all():
            raise RuntimeError("writer lost")
        return write_part(conn, due, *args)

    monkeypatch.setattr(tick_module, "_write_part", lose_one_bucket)
    with pytest.raises(RuntimeError, match="writer lost"):
        _tick(postgres, programs, writers=2)
    done = {a for a, _ in sent(postgres)} | {a for a, _ in sent(postgres, "step_held")}
    assert done and done == {a for a in ids if a % 2 != lost_bucket}  # the other bucket committed, this one not
    monkeypatch.setattr(tick_module, "_write_part", write_part)
    _tick(postgres, programs, writers=2)
    _tick(postgres, programs, writers=2)
    steps = sent(postgres) + sent(postgres, "step_held")
    assert len(steps) == len(set(steps)) == 2 * N  # every account's two steps, each once
    with postgres.connect() as conn:
        tasks = conn.execute(select(OutboxRow.dedupe_key)).scalars().all()
    assert len(tasks) == len(set(tasks)) == len(sent(postgres))


def test_two_concurrent_ticks_with_parallel_writers_send_each_step_once(postgres, parallel):
    ids = book(postgres, N)
    programs = _enter(postgres, "split", ids)

    def tick_once():
        with postgres.begin() as conn:
            run_tick(conn, programs, T0 + timedelta(days=1), LIMITS, 2)

    errors = side_by_side(tick_once)
    assert errors == []
    steps = sent(postgres) + sent(postgres, "step_held")
    assert len(steps) == len(set(steps)) == 2 * N


def test_a_rerun_by_parallel_writers_writes_and_releases_only_the_steps_not_written(postgres, parallel):
    """Enrollments put back to steps already written (as a newer program version or an escalation can): where the
    action exists the actions insert writes none, and the row, older than the insert, gets no outbox row again, even
    with the first ones gone (delivered and purged); where it does not (deleted here), it is written and released."""
    ids = book(postgres, N)
    programs = _enter(postgres, "split", ids)
    first = _tick(postgres, programs, writers=2)
    with postgres.begin() as conn:
        conn.execute(delete(OutboxRow))
        gone = conn.execute(delete(Action).where(Action.account_id.in_(ids[::3]))).rowcount
        conn.execute(update(ProgramEnrollment).values(status="active", step=0, next_due_at=T0, ended_at=None))
    again = _tick(postgres, programs, writers=2)
    assert again.sent == first.sent > gone > 0 and again.outbox_rows == gone
    with postgres.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Action)) == first.sent
        released = set(conn.scalars(select(OutboxRow.account_id)))
    assert released == {a for a in ids[::3] if a in {a for a, _ in sent(postgres)}}
