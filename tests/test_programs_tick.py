"""The program state machine against a real store (SQLite and PostgreSQL): enter, advance on day offsets, exit,
escalate without repeating a step, re-entry, the control group, and no step sent twice under reruns, concurrent
ticks or a killed worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from app.programs.tick import Limits, enroll, run_tick
from app.store.models import Account, ProgramEnrollment
from tests.programs_support import (
    T0,
    actions,
    book,
    enrollments,
    outbox_count,
    program,
    scored,
    sent,
    side_by_side,
)

TIERED = """
program: rescue
title: Rescue
entry: risk >= 40
exit:
  recovered: risk < 30
reentry: {reentry}
reentry_days: 10
holdout: {holdout}
tiers:
  - name: low
    when: risk >= 40 and risk < 70
  - name: high
    when: risk >= 70
steps:
  - key: hello
    tier: low
    day: 0
    channel: crm_task
    text: {{default: {{title: "Hello {{name}}", body: "ARR {{arr}}"}}}}
  - key: follow_up
    tier: low
    day: 3
    channel: crm_task
    text: {{default: {{title: "Follow up {{name}}", body: "b"}}}}
  - key: call
    tier: high
    day: 0
    channel: crm_task
    text: {{default: {{title: "Call {{name}}", body: "b"}}}}
  - key: offer
    tier: high
    day: 2
    after: previous
    channel: crm_task
    text: {{default: {{title: "Offer {{name}}", body: "b"}}}}
"""
LIMITS = Limits(messages_per_week=2, task_budget_per_csm=1000)


def rescue(reentry: str = "after_days", holdout: float = 0.0):
    return program(TIERED.format(reentry=reentry, holdout=holdout))


def tick(store, programs, at):
    with store.begin() as conn:
        return run_tick(conn, programs, at, LIMITS)


def score(store, programs, ids, risk, at):
    with store.begin() as conn:
        return enroll(conn, programs, scored(ids, risk), at)


def test_enter_advance_on_day_offsets_and_complete(store):
    ids = book(store, 2)
    programs = rescue()
    score(store, programs, ids, [50, 10], T0)  # only the first enters
    tick(store, programs, T0)
    assert sent(store) == [(ids[0], "hello")]
    tick(store, programs, T0 + timedelta(days=2))  # follow_up is due on day 3
    assert sent(store) == [(ids[0], "hello")]
    result = tick(store, programs, T0 + timedelta(days=3))
    assert sent(store) == [(ids[0], "follow_up"), (ids[0], "hello")]
    assert result.completed == 1
    (row,) = enrollments(store)
    assert row.status == "completed" and row.step == 2 and row.version == 0
    assert actions(store) == [(ids[0], "follow_up"), (ids[0], "hello")]


def test_exit_on_recovery_stops_the_steps(store):
    ids = book(store, 1)
    programs = rescue()
    score(store, programs, ids, [50], T0)
    tick(store, programs, T0)
    score(store, programs, ids, [20], T0 + timedelta(days=1))
    tick(store, programs, T0 + timedelta(days=5))
    assert sent(store) == [(ids[0], "hello")]
    (row,) = enrollments(store)
    assert (row.status, row.exit_reason) == ("exited", "recovered")
    assert sent(store, "exited") == [(ids[0], None)]


def test_escalation_moves_up_without_repeating_and_never_down(store):
    ids = book(store, 1)
    programs = rescue()
    score(store, programs, ids, [50], T0)
    tick(store, programs, T0)
    score(store, programs, ids, [80], T0 + timedelta(days=1))  # rises into the high tier
    tick(store, programs, T0 + timedelta(days=1))
    score(store, programs, ids, [50], T0 + timedelta(days=2))  # falls back: stays in the high tier
    tick(store, programs, T0 + timedelta(days=4))
    assert [s for _, s in sent(store)] == ["call", "hello", "offer"]
    (row,) = enrollments(store)
    assert row.tier == 1 and row.status == "completed"
    score(store, programs, ids, [85], T0 + timedelta(days=5))  # completed, re-entry waits 10 days
    tick(store, programs, T0 + timedelta(days=6))
    assert len(sent(store)) == 3


def test_reentry_rules(store):
    ids = book(store, 1)
    for policy, expected in (("never", 1), ("after_days", 2)):
        programs = rescue(policy)
        with store.begin() as conn:
            conn.execute(ProgramEnrollment.__table__.delete())
        score(store, programs, ids, [50], T0)
        score(store, programs, ids, [10], T0 + timedelta(days=1))  # recovered, exits
        score(store, programs, ids, [50], T0 + timedelta(days=5))  # too soon for after_days (10)
        score(store, programs, ids, [50], T0 + timedelta(days=12))
        assert len(enrollments(store)) == expected, policy


def test_control_group_never_receives_anything(store):
    ids = book(store, 40)
    programs = rescue(holdout=0.5)
    score(store, programs, ids, [50] * 40, T0)
    for day in range(5):
        tick(store, programs, T0 + timedelta(days=day))
    rows = enrollments(store)
    control = {r.account_id for r in rows if r.holdout}
    assert 5 <= len(control) <= 35
    assert not control & {a for a, _ in actions(store)}
    assert {a for a, _ in sent(store, "step_held")} == control
    assert {a for a, _ in actions(store)} == set(ids) - control


def test_rerun_sends_nothing_twice(store):
    ids = book(store, 3)
    programs = rescue()
    score(store, programs, ids, [50, 60, 45], T0)
    for _ in range(3):
        score(store, programs, ids, [50, 60, 45], T0)
        tick(store, programs, T0 + timedelta(days=3))
    assert len(sent(store)) == 6 and len(actions(store)) == 6
    assert outbox_count(store) == 6  # one task each, in the CRM that holds the company


def test_killed_worker_rolls_back_and_the_next_tick_sends_once(store, monkeypatch):
    ids = book(store, 2)
    programs = rescue()
    score(store, programs, ids, [50, 50], T0)
    import app.programs.tick as tick_module

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(tick_module, "release_due_actions", die)
    with pytest.raises(SystemExit):
        tick(store, programs, T0)
    assert sent(store) == [] and actions(store) == []
    monkeypatch.undo()
    tick(store, programs, T0)
    tick(store, programs, T0)
    assert sent(store) == [(ids[0], "hello"), (ids[1], "hello")]


def test_two_concurrent_ticks_send_each_step_once(store):
    ids = book(store, 30)
    programs = rescue()
    score(store, programs, ids, [50] * 30, T0)
    errors = side_by_side(lambda: tick(store, programs, T0 + timedelta(days=3)))
    assert errors == []
    steps = sent(store)
    assert len(steps) == len(set(steps)) == 60
    assert len(actions(store)) == 60


def test_churned_accounts_exit_and_get_nothing(store):
    ids = book(store, 2)
    programs = rescue()
    score(store, programs, ids, [50, 50], T0)
    with store.begin() as conn:
        conn.execute(update(Account).where(Account.id == ids[1]).values(status="churned"))
    tick(store, programs, T0)
    assert sent(store) == [(ids[0], "hello")]
    reasons = {r.account_id: r.exit_reason for r in enrollments(store)}
    assert reasons == {ids[0]: None, ids[1]: "churned"}


def test_card_request_is_honoured(store):
    ids = book(store, 2)
    programs = rescue()
    with store.begin() as conn:
        conn.execute(ProgramEnrollment.__table__.insert().values(
            account_id=ids[1], program="rescue", status="requested", requested_by="csm@x", source="card",
            requested_at=T0))  # fmt: skip
    score(store, programs, ids, [10, 10], T0)  # neither qualifies by itself; the request enters the second
    tick(store, programs, T0)
    assert sent(store) == [(ids[1], "hello")]
    with store.connect() as conn:
        assert conn.execute(select(ProgramEnrollment.holdout)).scalars().all() == [False]


def test_an_enrollment_past_the_last_step_of_a_shorter_version_completes(store):
    ids = book(store, 1)
    programs = rescue()
    score(store, programs, ids, [50], T0)
    tick(store, programs, T0)  # hello sent; follow_up (step 1) due on day 3
    text = TIERED.format(reentry="never", holdout=0)
    follow_up = text[text.index("  - key: follow_up") : text.index("  - key: call")]
    shorter = program(text.replace(follow_up, ""))
    assert len(shorter["rescue"].program.steps) == 3
    tick(store, shorter, T0 + timedelta(days=3))
    (row,) = enrollments(store)
    assert row.status == "completed" and sent(store) == [(ids[0], "hello")]


def test_exits_and_escalations_of_a_chunk_keep_to_its_account_span_and_miss_none(store):
    """A chunk's exits and escalations pick their enrollments by id and also by the chunk's account span (so their
    plans need no statistics, app/programs/tick._span): exactly the chunk's enrollments that should move do, and
    the accounts around it, in the same program and state, are left alone."""
    ids = book(store, 6)
    programs = rescue()
    score(store, programs, ids, [50] * 6, T0)  # all enter the low tier
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    chunk = ids[2:4]  # the middle accounts: one recovers (exits), one rises into the high tier
    event.listen(store, "before_cursor_execute", seen)
    try:
        counts = score(store, programs, chunk, [20, 80], T0 + timedelta(days=1))
    finally:
        event.remove(store, "before_cursor_execute", seen)
    assert counts["rescue"]["exited"] == 1 and counts["rescue"]["escalated"] == 1
    rows = {r.account_id: (r.status, r.exit_reason, r.tier) for r in enrollments(store)}
    assert rows == {a: ("exited", "recovered", 0) if a == chunk[0] else ("active", None, 1 if a == chunk[1] else 0)
                    for a in ids}  # fmt: skip
    assert sent(store, "exited") == [(chunk[0], None)]
    assert [a for a, _ in sent(store, "escalated")] == [chunk[1]]
    lock = "program_enrollments.id = ?"  # SQLite's programs lock: a write to no row (take_lock)
    moves = [s for s in statements if s.lstrip().upper().startswith(("UPDATE PROGRAM_ENROLLMENTS",
             "INSERT INTO PROGRAM_EVENTS")) and not s.rstrip().endswith(lock)]  # fmt: skip
    assert len(moves) == 4 and all("program_enrollments.account_id BETWEEN" in s for s in moves)
