"""Contact hygiene and CSM capacity across programs: at most N customer messages per account and week, email
for contacts who do not log in, a weekly task budget per CSM filled by ARR at risk x urgency, one open task per
problem."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import select, update

from app.programs.tick import Limits, enroll, run_tick
from app.store.current_scores import store_scores
from app.store.models import Action, Contact, program_history
from tests.programs_support import T0, book, program, scored

MESSAGES = """
program: {name}
title: Messages
entry: risk >= 40
holdout: 0
steps:
  - {{key: {name}_a, day: 0, channel: inapp_message, text: {{default: {{title: "A", body: "a"}}}}}}
  - {{key: {name}_b, day: 0, channel: email, text: {{default: {{title: "B", body: "b"}}}}}}
"""
TASKS = """
program: {name}
title: Tasks
entry: risk >= 40
holdout: 0
steps:
  - {{key: {name}_task, day: 0, channel: crm_task, priority: high, problem: outreach,
     text: {{default: {{title: "Call {{name}}", body: "b"}}}}}}
"""


def both(*texts: str) -> dict:
    out = {}
    for text in texts:
        out.update(program(text))
    return out


def run(store, programs, ids, at, limits, risk=50):
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [risk] * len(ids)), at)
    with store.begin() as conn:
        return run_tick(conn, programs, at, limits)


def customer_messages(store) -> list[tuple[int, str, object]]:
    with store.connect() as conn:
        query = select(program_history.c.account_id, program_history.c.channel, program_history.c.at).where(
            program_history.c.kind == "step_sent", program_history.c.channel.in_(("inapp_message", "email"))
        )
        return conn.execute(query).all()  # fmt: skip


def test_message_cap_holds_across_programs_and_the_rest_waits(store):
    ids = book(store, 3)
    programs = both(MESSAGES.format(name="one"), MESSAGES.format(name="two"))
    run(store, programs, ids, T0, Limits(messages_per_week=2))
    sent = customer_messages(store)
    assert len(sent) == 6 and all(sum(a == i for a, _, _ in sent) == 2 for i in ids)
    run(store, programs, ids, T0 + timedelta(days=3), Limits(messages_per_week=2))
    assert len(customer_messages(store)) == 6  # still within the week
    run(store, programs, ids, T0 + timedelta(days=8), Limits(messages_per_week=2))
    assert len(customer_messages(store)) == 12  # the deferred ones, a week later


def test_contacts_who_do_not_log_in_get_email_not_in_app(store):
    ids = book(store, 2)
    with store.begin() as conn:
        conn.execute(update(Contact).where(Contact.account_id == ids[1]).values(last_seen=None))
    run(store, program(MESSAGES.format(name="one")), ids, T0, Limits(messages_per_week=5))
    channels = {(a, c) for a, c, _ in customer_messages(store)}
    assert channels == {(ids[0], "inapp_message"), (ids[0], "email"), (ids[1], "email")}


def test_weekly_task_budget_per_csm_goes_to_the_most_arr_first(store):
    ids = book(store, 5)  # same owner; ARR grows with the index
    programs = program(TASKS.format(name="calls"))
    run(store, programs, ids, T0, Limits(task_budget_per_csm=2))
    with store.connect() as conn:
        first = sorted(conn.execute(select(Action.account_id)).scalars())
    assert first == sorted(ids[-2:])
    run(store, programs, ids, T0 + timedelta(days=2), Limits(task_budget_per_csm=2))
    with store.connect() as conn:
        assert len(conn.execute(select(Action.id)).all()) == 2  # the rest waits for next week's budget
    run(store, programs, ids, T0 + timedelta(days=8), Limits(task_budget_per_csm=2))
    with store.connect() as conn:
        assert len(conn.execute(select(Action.id)).all()) == 4


def test_the_budget_goes_to_the_most_arr_at_risk(store):
    ids = book(store, 3)  # ARR 2,400, 4,800 and 7,200
    with store.begin() as conn:  # the smallest account is the one about to churn (its latest score says so)
        for as_of, risk in ((T0.date() - timedelta(days=7), [10.0, 90.0, 90.0]), (T0.date(), [90.0, 10.0, 20.0])):
            scores = pd.DataFrame({"account_id": ids, "as_of": as_of, "computed_at": T0, "risk": risk})
            store_scores(conn, scores, list(scores.columns), json_columns=())
    run(store, program(TASKS.format(name="calls")), ids, T0, Limits(task_budget_per_csm=1))
    with store.connect() as conn:
        assert conn.execute(select(Action.account_id)).scalars().all() == [ids[0]]  # 2,160 at risk vs 480 / 1,440


def test_one_open_task_per_account_and_problem_across_programs(store):
    ids = book(store, 2)
    programs = both(TASKS.format(name="renewal"), TASKS.format(name="rescue"))
    run(store, programs, ids, T0, Limits())
    with store.connect() as conn:
        tasks = conn.execute(select(Action.account_id)).scalars().all()
        covered = conn.execute(select(program_history.c.id).where(program_history.c.kind == "step_covered")).all()
    assert sorted(tasks) == sorted(ids) and len(covered) == 2


def test_a_task_sent_by_an_earlier_tick_covers_another_programs_task_for_the_same_problem(store):
    """The open task is the earlier tick's sent step, which only its action records (program_history's `step_sent`
    row): the other program's task for the same problem, due days later, is covered, not stacked."""
    ids = book(store, 2)
    run(store, program(TASKS.format(name="renewal")), ids, T0, Limits())
    later = T0 + timedelta(days=2)
    run(store, both(TASKS.format(name="renewal"), TASKS.format(name="rescue")), ids, later, Limits())
    with store.connect() as conn:
        tasks = sorted(conn.execute(select(Action.account_id, Action.playbook)).all())
        covered = conn.execute(select(program_history.c.account_id, program_history.c.program)
                               .where(program_history.c.kind == "step_covered")).all()  # fmt: skip
    assert tasks == sorted((a, "renewal") for a in ids)
    assert sorted(covered) == sorted((a, "rescue") for a in ids)
