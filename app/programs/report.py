"""`cse programs report`: per program and step, what happened to the accounts that entered and what it was worth.

Plain query functions (the web app shows the same figures): everything is read in a few grouped statements.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, select

from app.programs.definitions import ActiveProgram
from app.programs.referrals import referral_revenue
from app.store.bulk import fetch_frame
from app.store.models import Account, Action, ProgramEnrollment, ProgramMilestone, program_history
from engine.programs.outcomes import program_outcomes

ENROLLMENT_COLUMNS = ("program", "status", "exit_reason", "holdout", "arr_at_entry", "arr_at_end")


def enrollment_frame(conn: Connection) -> pd.DataFrame:
    """Every enrollment that entered a program (requests still waiting or merged are not enrollments)."""
    table = ProgramEnrollment.__table__
    query = select(*(table.c[c] for c in ENROLLMENT_COLUMNS)).where(table.c.entered_at.is_not(None))
    return pd.DataFrame(conn.execute(query).all(), columns=list(ENROLLMENT_COLUMNS))


def step_counts(conn: Connection) -> dict[str, dict[str, dict[str, int]]]:
    """program -> step -> {sent, held, covered}: how often each step went out (and would have, for the control)."""
    history = program_history
    query = select(history.c.program, history.c.step, history.c.kind, func.count()).where(history.c.step.is_not(None))
    out: dict[str, dict[str, dict[str, int]]] = {}
    for program, step, kind, n in conn.execute(query.group_by(history.c.program, history.c.step, history.c.kind)):
        out.setdefault(program, {}).setdefault(step, {})[kind.removeprefix("step_")] = int(n)
    return out


def programs_report(conn: Connection, programs: dict[str, ActiveProgram]) -> dict:
    """Per program: entered, active, completed, exited by reason, success rate, uplift vs control with its
    interval, revenue protected, expansion won, referral revenue, and per step how often it was sent."""
    frame = enrollment_frame(conn)
    steps = step_counts(conn)
    referrals = referral_revenue(conn)
    none = {"referrals": 0, "converted": 0, "revenue": 0.0}
    out = {}
    for name in sorted(set(programs) | set(frame["program"]) | (set(referrals) - {""})):
        rows = frame[frame["program"] == name]
        success = programs[name].program.success if name in programs else ("recovered",)
        out[name] = {**program_outcomes(rows, tuple(success)), "referral_revenue": referrals.get(name, none),
                     "steps": steps.get(name, {})}  # fmt: skip
    return out


def milestone_funnel(conn: Connection, as_of: date | None = None) -> dict[str, int]:
    """Accounts that met each onboarding milestone (by `as_of`)."""
    query = select(ProgramMilestone.milestone, func.count()).group_by(ProgramMilestone.milestone)
    if as_of is not None:
        query = query.where(ProgramMilestone.met_on <= as_of)
    return {m: int(n) for m, n in conn.execute(query)}


CHURN_WINDOW_DAYS = 90  # "the accounts that churn within 90 days"
REACH_TARGET = 0.9  # share of them the programs must reach (issue 11)


def churn_reach(conn: Connection, churn_days: pd.Series, window_days: int = CHURN_WINDOW_DAYS) -> dict:
    """Of the accounts that churn (`churn_days`: account id -> churn date), the share some program step reached
    in the `window_days` before the churn date: any step (a CSM task or a message), and a CSM task; and how many of
    those not reached are in a program's control group (left alone by design, to measure the programs)."""
    churn = pd.to_datetime(pd.Series(churn_days, dtype=object)).dropna()
    out = {"window_days": window_days, "churned": len(churn), "reached": 0, "reached_by_csm": 0,
           "reached_share": None, "reached_by_csm_share": None, "target": REACH_TARGET, "met": False,
           "unreached_in_a_control_group": 0}  # fmt: skip
    if churn.empty:
        return out
    since = (churn.min() - pd.Timedelta(days=window_days)).to_pydatetime()
    events = program_history
    query = select(events.c.account_id, events.c.channel, events.c.at).where(
        events.c.kind == "step_sent", events.c.at >= since
    )
    sent = fetch_frame(conn, query, ["account_id", "channel", "at"]).astype({"account_id": "int64"})
    sent["churn"] = sent["account_id"].map(churn)
    sent["at"] = pd.to_datetime(sent["at"])
    before = sent[(sent["at"] <= sent["churn"] + pd.Timedelta(days=1))
                  & (sent["at"] >= sent["churn"] - pd.Timedelta(days=window_days))]  # fmt: skip
    reached = before["account_id"].nunique()
    by_csm = before.loc[before["channel"] == "crm_task", "account_id"].nunique()
    share = reached / len(churn)
    held = select(ProgramEnrollment.account_id).where(ProgramEnrollment.holdout.is_(True)).distinct()
    unreached = set(churn.index) - set(before["account_id"])
    in_control = len(unreached & set(conn.execute(held).scalars()))
    return out | {"reached": reached, "reached_by_csm": by_csm, "reached_share": round(share, 3),
                  "reached_by_csm_share": round(by_csm / len(churn), 3), "met": share >= REACH_TARGET,
                  "unreached_in_a_control_group": in_control}  # fmt: skip


def churned_recently(conn: Connection, as_of: date, window_days: int = CHURN_WINDOW_DAYS) -> pd.Series:
    """Accounts that churned in the `window_days` up to `as_of`: account id -> churn date."""
    query = select(Account.id, Account.churned_at).where(
        Account.churned_at > as_of - timedelta(days=window_days), Account.churned_at <= as_of
    )
    return pd.Series(dict(conn.execute(query).all()), dtype=object)


def csm_task_load(conn: Connection, since: datetime, budget: int) -> dict:
    """CRM tasks per CSM (account owner) and calendar week since `since`: the most and the mean, against the
    weekly budget (CSE_TASK_BUDGET_PER_CSM)."""
    query = (
        select(Account.owner, Action.created_at)
        .select_from(Action)
        .join(Account, Account.id == Action.account_id)
        .where(Action.kind == "crm_task", Action.created_at >= since)
    )
    tasks = fetch_frame(conn, query, ["owner", "created_at"])
    out = {"budget": budget, "csm_weeks": 0, "max": 0, "mean": 0.0, "within_budget": True}
    if tasks.empty:
        return out
    created = pd.to_datetime(tasks["created_at"])
    tasks["week"] = (created - pd.to_timedelta(created.dt.day_of_week, unit="D")).dt.normalize()
    per = tasks.groupby(["owner", "week"], dropna=False).size()
    return out | {"csm_weeks": len(per), "max": int(per.max()), "mean": round(float(per.mean()), 1),
                  "within_budget": int(per.max()) <= budget}  # fmt: skip
