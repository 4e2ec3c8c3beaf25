"""`cse programs report`: per program and step, what happened to the accounts that entered and what it was worth.

Plain query functions (the web app shows the same figures): everything is read in a few grouped statements.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, func, select

from app.programs.definitions import ActiveProgram
from app.programs.referrals import referral_revenue
from app.store.models import ProgramEnrollment, ProgramEvent, ProgramMilestone
from engine.programs.outcomes import program_outcomes

ENROLLMENT_COLUMNS = ("program", "status", "exit_reason", "holdout", "arr_at_entry", "arr_at_end")


def enrollment_frame(conn: Connection) -> pd.DataFrame:
    """Every enrollment that entered a program (requests still waiting or merged are not enrollments)."""
    table = ProgramEnrollment.__table__
    query = select(*(table.c[c] for c in ENROLLMENT_COLUMNS)).where(table.c.entered_at.is_not(None))
    return pd.DataFrame(conn.execute(query).all(), columns=list(ENROLLMENT_COLUMNS))


def step_counts(conn: Connection) -> dict[str, dict[str, dict[str, int]]]:
    """program -> step -> {sent, held, covered}: how often each step went out (and would have, for the control)."""
    query = select(ProgramEvent.program, ProgramEvent.step, ProgramEvent.kind, func.count()).where(
        ProgramEvent.step.is_not(None)
    )
    out: dict[str, dict[str, dict[str, int]]] = {}
    for program, step, kind, n in conn.execute(query.group_by(ProgramEvent.program, ProgramEvent.step,
                                                               ProgramEvent.kind)):  # fmt: skip
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
