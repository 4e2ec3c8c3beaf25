"""The checks of the whole: the share of the churning accounts a program step reached before they churned, the
CRM tasks per CSM and week against the budget, and the interventions that replaced the playbooks' immediate rules."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import insert

from app.programs.report import churn_reach, csm_task_load
from app.store.models import Action, ProgramEnrollment
from engine.programs import DEFAULT_PROGRAMS_DIR
from engine.programs.definition import parse_program
from engine.programs.plan import condition_frame, membership
from tests.programs_support import T0, book


def _sent(conn, account_id: int, channel: str, at) -> None:
    """A step sent as a tick records it: its action, carrying its enrollment (program_history's `step_sent` row)."""
    enrollment = conn.execute(insert(ProgramEnrollment).values(
        account_id=account_id, program="retention", status="active", requested_by="t", source="engine",
        requested_at=at)).inserted_primary_key[0]  # fmt: skip
    conn.execute(insert(Action).values(account_id=account_id, playbook="retention", step="s", kind=channel, due=at,
                                       status="released", dedupe_key=f"program:{enrollment}:s", created_at=at,
                                       payload={}, enrollment_id=enrollment))  # fmt: skip


def test_churn_reach_counts_steps_in_the_window_before_the_churn_date(store):
    a, b, c, d = book(store, 4)
    with store.begin() as conn:
        _sent(conn, a, "crm_task", T0)  # a CSM task 10 days before the churn: reached, by a CSM
        _sent(conn, b, "email", T0 - timedelta(days=200))  # long before the window: not reached
        _sent(conn, c, "email", T0 + timedelta(days=20))  # after the churn: not reached
        _sent(conn, d, "inapp_message", T0)  # a message: reached, not by a CSM
        churn = pd.Series({i: (T0 + timedelta(days=10)).date() for i in (a, b, c, d)}, dtype=object)
        reach = churn_reach(conn, churn)
    assert (reach["churned"], reach["reached"], reach["reached_by_csm"]) == (4, 2, 1)
    assert reach["reached_share"] == 0.5 and not reach["met"]


def test_csm_task_load_per_owner_and_calendar_week(store):
    ids = book(store, 2, owner="dana@vendor.example")
    monday = T0 - timedelta(days=T0.weekday())
    with store.begin() as conn:
        rows = [{"account_id": ids[k % 2], "playbook": "retention", "step": "s", "kind": "crm_task", "due": at,
                 "status": "planned", "dedupe_key": f"t{k}", "created_at": at, "payload": {}}
                for k, at in enumerate([monday] * 3 + [monday + timedelta(days=8)])]  # fmt: skip
        conn.execute(insert(Action), rows)
        load = csm_task_load(conn, monday - timedelta(days=1), budget=2)
    assert (load["csm_weeks"], load["max"], load["mean"], load["within_budget"]) == (2, 3, 2.0, False)


def test_interventions_enter_on_what_happens_in_the_most_urgent_tier():
    path = DEFAULT_PROGRAMS_DIR / "interventions.yaml"
    program = parse_program(path.read_text(), str(path))
    frame = pd.DataFrame({
        "health": 50.0, "risk": 30.0, "band": ["healthy", "at_risk", "critical", "healthy", "healthy"],
        "segment": "smb", "expansion_type": None,
        "usage_change_28d": [-0.6, 0.0, -0.6, 0.0, 0.0], "trend_7d": [0.0, -25.0, 0.0, 0.0, 0.0],
        "days_to_renewal": [300.0, 300.0, 30.0, 30.0, 300.0], "churn_signals_30d": [0.0, 0.0, 0.0, 0.0, 1.0],
    }, index=pd.Index([1, 2, 3, 4, 5], name="account_id"))  # fmt: skip
    state = membership(program, condition_frame(frame))
    assert state["entry"].tolist() == [True, True, True, False, True]  # 4: renewal near but health fine
    names = np.array(program.tier_names())
    assert names[state.loc[[1, 2, 3, 5], "tier"]].tolist() == ["usage_drop", "health_drop", "renewal_at_risk",
                                                               "churn_signal"]  # fmt: skip
    urgent = [s for s in program.steps if s.tier in ("renewal_at_risk", "churn_signal")]
    assert {s.problem for s in urgent if s.channel == "crm_task"} == {"retention"}  # one task with retention's
    assert all(program.steps_of(tier)[0].channel == "email" for tier in names)  # reached even when the budget is full
