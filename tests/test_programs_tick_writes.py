"""How a tick writes (SQLite and PostgreSQL): each action in its final status with its outbox rows, a step already
written never released again, and migrations 0019 (no due index, no account foreign key on the events), 0020
(event keys within the enrollment), 0022 (sent steps and entries derived, program_history) keeping the history
and still removing an account's events with the account, and 0023 (the outcomes index rekeyed)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import delete, func, insert, inspect, select, update

from app.programs.report import programs_report
from app.programs.tick import Limits, enroll, run_tick
from app.store.db import alembic_config, upgrade_schema
from app.store.models import Account, Action, ExternalId, OutboxRow, ProgramEnrollment, ProgramEvent, program_history
from tests.programs_support import T0, book, program, scored

ONE_STEP = """
program: nudge
title: Nudge
entry: risk >= 40
steps:
  - key: call
    day: 0
    channel: crm_task
    text: {default: {title: "Call {name}", body: "ARR {arr}"}}
"""
LIMITS = Limits(messages_per_week=2, task_budget_per_csm=1000)


def _enter_and_tick(store, ids: list[int]) -> dict:
    programs = program(ONE_STEP)
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [50] * len(ids)), T0)
    with store.begin() as conn:
        run_tick(conn, programs, T0, LIMITS)
    return programs


def _history(store, *columns: str) -> list[tuple]:
    """The enrollments' history: the view program_history at head, the events table before migration 0022."""
    with store.connect() as conn:
        source = program_history if "program_history" in inspect(conn).get_view_names() else ProgramEvent.__table__
        return sorted(conn.execute(select(*(source.c[c] for c in columns))).all())


def _actions(store) -> dict[int, tuple[str, dict]]:
    with store.connect() as conn:
        return {a: (s, p) for a, s, p in conn.execute(select(Action.account_id, Action.status, Action.payload))}


def test_a_tick_writes_each_action_released_or_without_target_and_its_outbox_row(store):
    ids = book(store, 2)
    with store.begin() as conn:  # the second account has no company in any CRM: its task has nowhere to go
        conn.execute(delete(ExternalId).where(ExternalId.account_id == ids[1]))
    _enter_and_tick(store, ids)
    actions = _actions(store)
    assert {a: s for a, (s, _) in actions.items()} == {ids[0]: "released", ids[1]: "no_target"}
    with store.connect() as conn:
        rows = conn.execute(select(OutboxRow.account_id, OutboxRow.vendor, OutboxRow.operation, OutboxRow.payload))
        rows = rows.all()
    assert [(a, v, o) for a, v, o, _ in rows] == [(ids[0], "hubspot", "create_task")]
    payload, action = rows[0][3], actions[ids[0]][1]
    assert payload == {**action, "due": T0.isoformat(), "dedupe_key": f"program:{action['enrollment_id']}:call",
                       "company_id": "co-A0000"}  # fmt: skip
    assert action["title"] == "Call Company 0" and action["reason"].startswith(action["body"] + " (program nudge")


def test_a_step_whose_action_exists_is_not_released_again(store):
    """A step already written for an enrollment (e.g. a newer version of the program put it at a later position)
    gets no second action and no outbox row, even when its first action found no target and now one exists."""
    ids = book(store, 1)
    with store.begin() as conn:
        companies = conn.execute(select(ExternalId.__table__)).mappings().all()
        conn.execute(delete(ExternalId))
    programs = _enter_and_tick(store, ids)
    with store.begin() as conn:
        conn.execute(ExternalId.__table__.insert(), [dict(row) for row in companies])
        conn.execute(update(ProgramEnrollment).values(status="active", step=0, next_due_at=T0, ended_at=None))
    with store.begin() as conn:
        assert run_tick(conn, programs, T0, LIMITS).sent == 1  # decided again, written once
    assert {a: s for a, (s, _) in _actions(store).items()} == {ids[0]: "no_target"}
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(OutboxRow)) == 0


def test_a_round_of_new_and_written_steps_releases_only_the_new_ones(store):
    """One round (one connection, SQLite too) where some steps' actions exist and the others are new: the actions
    insert writes the new ones, and exactly those get their outbox row (the existing ones, delivered and purged,
    none again)."""
    ids = book(store, 3)
    programs = _enter_and_tick(store, ids)
    with store.begin() as conn:
        conn.execute(delete(OutboxRow))
        conn.execute(delete(Action).where(Action.account_id == ids[1]))
        conn.execute(update(ProgramEnrollment).values(status="active", step=0, next_due_at=T0, ended_at=None))
    with store.begin() as conn:
        result = run_tick(conn, programs, T0, LIMITS)
    assert (result.sent, result.outbox_rows) == (3, 1)
    with store.connect() as conn:
        assert sorted(conn.scalars(select(Action.account_id))) == sorted(ids)
        assert list(conn.scalars(select(OutboxRow.account_id))) == [ids[1]]


def test_the_report_counts_each_step_sent_from_its_action(store):
    """`cse programs report`'s per-step counts read the sent steps where the tick records them (their actions)."""
    ids = book(store, 3)
    programs = _enter_and_tick(store, ids)
    with store.connect() as conn:
        assert programs_report(conn, programs)["nudge"]["steps"] == {"call": {"sent": 3}}


def test_migration_0019_keeps_the_history_and_an_account_removal_still_removes_its_events(store):
    ids = book(store, 2)
    _enter_and_tick(store, ids)

    def history() -> list[tuple]:
        return _history(store, "enrollment_id", "account_id", "kind", "step")

    before = history()
    assert {(a, k) for _, a, k, _ in before} == {(i, k) for i in ids for k in ("entered", "step_sent")}
    command.downgrade(alembic_config(store), "0018")
    assert history() == before
    upgrade_schema(store)
    assert history() == before
    with store.begin() as conn:  # through its enrollment (ON DELETE CASCADE twice), not a key of its own
        conn.execute(delete(Account).where(Account.id == ids[0]))
    assert history() == [row for row in before if row[1] == ids[1]]


def test_migration_0020_moves_the_event_keys_within_the_enrollment_and_back(store):
    """Upgrade takes the enrollment id out of every event key, downgrade puts it back; a rerun after the upgrade
    (the same events again) adds no event and sends nothing twice."""
    ids = book(store, 2)
    programs = program(ONE_STEP)
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [50] * len(ids)), T0)
        enrollment = conn.scalar(select(ProgramEnrollment.id).where(ProgramEnrollment.account_id == ids[0]))
        hand = {"enrollment_id": enrollment, "account_id": ids[0], "program": "nudge", "kind": "note", "at": T0}
        conn.execute(insert(ProgramEvent).values(**hand, dedupe_key="by-hand-1"))  # a key of another form: kept
    with store.begin() as conn:
        run_tick(conn, programs, T0, LIMITS)

    def keys() -> list[tuple]:
        return _history(store, "enrollment_id", "kind", "dedupe_key")

    now = keys()
    enrollments = sorted({e for e, _, _ in now})
    expected = [(e, k, key) for e in enrollments for k, key in (("entered", "entered"), ("step_sent", "step:call"))]
    assert now == sorted([*expected, (enrollment, "note", "by-hand-1")])
    command.downgrade(alembic_config(store), "0019_tick")
    old = [(e, k, f"step:{e}:call" if k == "step_sent" else f"entered:{e}") for e, k, _ in expected]
    assert keys() == sorted([*old, (enrollment, "note", f"by-hand-1:{enrollment}")])
    upgrade_schema(store)
    assert keys() == sorted([*expected, (enrollment, "note", "by-hand-1")])
    with store.begin() as conn:  # the enrollments moved past their step: put them back, as a rerun would find them
        conn.execute(update(ProgramEnrollment).values(status="active", step=0, next_due_at=T0, ended_at=None))
    with store.begin() as conn:
        assert run_tick(conn, programs, T0, LIMITS).outbox_rows == 0
    assert keys() == sorted([*expected, (enrollment, "note", "by-hand-1")])


def _rows_per_account(store) -> dict[str, set[int]]:
    with store.connect() as conn:
        return {
            "actions": set(conn.scalars(select(Action.account_id))),
            "outbox": set(conn.scalars(select(OutboxRow.account_id))),
            "history": set(conn.scalars(select(program_history.c.account_id))),
        }


def test_an_account_removal_removes_its_actions_outbox_rows_and_history(store):
    """The foreign keys' ON DELETE CASCADE removes what a tick wrote for the account; the other accounts' rows stay."""
    ids = book(store, 3)
    _enter_and_tick(store, ids)
    written = ("actions", "outbox", "history")
    assert _rows_per_account(store) == {name: set(ids) for name in written}
    with store.connect() as conn:  # a sent step is its action, keyed per enrollment and step; no event is stored
        sent = conn.execute(select(program_history.c.enrollment_id, program_history.c.dedupe_key)
                            .where(program_history.c.kind == "step_sent")).all()  # fmt: skip
        assert conn.scalar(select(func.count()).select_from(ProgramEvent)) == 0
    assert len(sent) == 3 and sorted(sent) == sorted((enrollment, "step:call") for enrollment, _ in sent)
    with store.begin() as conn:
        conn.execute(delete(Account).where(Account.id == ids[0]))
    assert _rows_per_account(store) == {name: set(ids[1:]) for name in written}


def test_migration_0022_derives_sent_steps_and_entries_and_stores_them_back(store):
    """Downgrade writes the step_sent and entered events back from the actions and enrollments; upgrade gives the
    actions their enrollment and problem from those events and deletes the events the view derives, so the history
    lists each once. An event without its action (kept) and a hand-made event survive both ways."""
    ids = book(store, 2)
    _enter_and_tick(store, ids)
    columns = ("enrollment_id", "account_id", "program", "kind", "step", "channel", "at", "dedupe_key")
    before = _history(store, *columns)
    assert sorted(k for _, _, _, k, *_ in before) == ["entered", "entered", "step_sent", "step_sent"]
    command.downgrade(alembic_config(store), "0021_demo")
    assert _history(store, *columns) == before
    with store.begin() as conn:  # the problem a step addresses was on its event only; a sent step without action
        conn.execute(update(ProgramEvent).where(ProgramEvent.kind == "step_sent").values(problem="adoption"))
        enrollment = conn.scalar(select(func.min(ProgramEnrollment.id)))
        orphan = {"enrollment_id": enrollment, "account_id": ids[0], "program": "nudge", "kind": "step_sent",
                  "step": "older", "channel": "email", "at": T0, "dedupe_key": "step:older"}  # fmt: skip
        conn.execute(insert(ProgramEvent).values(**orphan))
    upgrade_schema(store)
    after = _history(store, *columns)
    assert after == sorted([*before, tuple(orphan[c] for c in columns)])
    with store.connect() as conn:
        stored = sorted(conn.execute(select(ProgramEvent.kind, ProgramEvent.step)).all())
        actions = sorted(conn.execute(select(Action.enrollment_id, Action.problem, Action.step)).all())
    assert stored == [("step_sent", "older")]
    assert actions == sorted((e, "adoption", "call") for e, _, _, k, *_ in before if k == "step_sent")
    command.downgrade(alembic_config(store), "0021_demo")
    assert _history(store, *columns) == after
    upgrade_schema(store)
    assert _history(store, *columns) == after


def test_migration_0023_keys_the_outcomes_index_without_the_arr_and_back(store):
    """0023_firstrun keys the outcomes index by what the dashboard groups and filters, the ARR sums INCLUDEd on
    PostgreSQL (so a run's entries of one key go in heap order), and the downgrade restores the seven-column key;
    the enrollments and the outcomes reported are the same under both."""
    ids = book(store, 3)
    programs = _enter_and_tick(store, ids)

    def shape() -> tuple[list[str], list[str]]:
        with store.connect() as conn:
            (index,) = [i for i in inspect(conn).get_indexes("program_enrollments")
                        if i["name"] == "ix_program_enrollments_outcomes"]  # fmt: skip
        return index["column_names"], index.get("dialect_options", {}).get("postgresql_include", [])

    def figures() -> tuple[list, dict]:
        with store.connect() as conn:
            rows = conn.execute(select(ProgramEnrollment).order_by(ProgramEnrollment.id)).all()
            return [tuple(r) for r in rows], programs_report(conn, programs)

    key = ["program", "status", "exit_reason", "holdout", "entered_at"]
    include = ["arr_at_entry", "arr_at_end"] if store.dialect.name == "postgresql" else []
    assert shape() == (key, include)
    before = figures()
    command.downgrade(alembic_config(store), "0022_tick")
    assert shape() == (key + ["arr_at_entry", "arr_at_end"], [])
    assert figures() == before
    upgrade_schema(store)
    assert shape() == (key, include)
    assert figures() == before
