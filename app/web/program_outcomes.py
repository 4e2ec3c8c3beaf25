"""Program outcomes for the dashboard, the same figures as `cse programs report` (app/programs/report.py), and the
enrollments behind each figure: who entered, is active, completed, exited (by reason), succeeded, was held out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from sqlalchemy import Connection, and_, case, func, or_, select

from app.store.models import Account, ProgramEnrollment
from app.web import context
from app.web.auth import requires
from app.web.program_definitions import definitions

program_views = Blueprint("programs", __name__, url_prefix="/programs", template_folder="templates")
STATUSES = ("active", "completed", "exited")
GROUPS = ("treated", "control")
LISTED = 500


def _groups(conn: Connection) -> list:
    """Entered enrollments counted per program, status, exit reason and group, with their ARR at entry and the ARR
    they grew by (never negative) summed: the database adds up the rows, not Python."""
    pe = ProgramEnrollment
    growth = case((pe.arr_at_end > pe.arr_at_entry, pe.arr_at_end - pe.arr_at_entry), else_=0.0)
    keys = (pe.program, pe.status, pe.exit_reason, pe.holdout)
    return conn.execute(
        select(*keys, func.count(), func.coalesce(func.sum(pe.arr_at_entry), 0.0), func.coalesce(func.sum(growth), 0.0))
        .where(pe.entered_at.is_not(None))
        .group_by(*keys)
    ).all()


def _enrollments(groups: list):
    """The groups as the one-row-per-enrollment frame engine/programs/outcomes.program_outcomes reads, each row
    carrying its group's average ARR at entry and growth: every count, rate and sum it takes comes out as over the
    real rows, so the dashboard shows what `cse programs report` prints without reading 100,000 rows into Python."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(groups, columns=["status", "exit_reason", "holdout", "n", "arr_sum", "growth_sum"])
    n = frame["n"].to_numpy(dtype="int64")
    entry = frame["arr_sum"].to_numpy(dtype="float64") / np.maximum(n, 1)
    grown = frame["growth_sum"].to_numpy(dtype="float64") / np.maximum(n, 1)
    columns = {"status": frame["status"], "exit_reason": frame["exit_reason"], "holdout": frame["holdout"],
               "arr_at_entry": entry, "arr_at_end": entry + grown}  # fmt: skip
    return pd.DataFrame(columns).loc[np.repeat(frame.index.to_numpy(), n)].reset_index(drop=True)


def dashboard_outcomes(conn: Connection) -> dict[str, Any]:
    """Per program anyone entered: its title and the figures of `cse programs report` (entered, active, completed,
    exited by reason, success rate, uplift with its interval, revenue protected, expansion won), whether the program
    runs now or is switched off; a program whose definition no longer loads counts `recovered` as success, as the
    report does, and is named in `problems`."""
    from engine.programs.outcomes import program_outcomes

    found = definitions(conn)
    by_program: dict[str, list] = {}
    for program, *rest in _groups(conn):
        by_program.setdefault(program, []).append(rest)
    rows, problems = [], []
    for name in sorted(by_program):
        program = found[name].program if name in found else None
        if name in found and program is None:
            problems.append(name)
        success = tuple(program.success) if program else ("recovered",)
        figures = program_outcomes(_enrollments(by_program[name]), success)
        rows.append({"name": name, "title": program.title if program else name, **figures})
    return {"programs": rows, "problems": problems}


def _success(conn: Connection, name: str):
    """The condition an enrollment met to count as a success of program `name` (as engine/programs/outcomes.py)."""
    found = definitions(conn).get(name)
    success = tuple(found.program.success) if found and found.program else ("recovered",)
    won = ProgramEnrollment.exit_reason.in_(success)
    return or_(won, ProgramEnrollment.status == "completed") if "completed" in success else won


@program_views.get("/<name>/accounts")
@requires()
def accounts(name: str):
    """The enrollments of one program behind a dashboard figure, filtered by status, exit reason, group (treated or
    control) and outcome (success), each linking to its account."""
    status, reason = request.args.get("status"), request.args.get("reason")
    group, outcome = request.args.get("group"), request.args.get("outcome")
    pe = ProgramEnrollment
    where = [pe.program == name, pe.entered_at.is_not(None)]
    if status in STATUSES:
        where.append(pe.status == status)
    if reason:
        where.append(and_(pe.status == "exited", pe.exit_reason == reason))
    if group in GROUPS:
        held = pe.holdout.is_(True)
        where.append(held if group == "control" else or_(pe.holdout.is_(False), pe.holdout.is_(None)))
    with context.engine().connect() as conn:
        if outcome == "success":
            where.append(_success(conn, name))
        total = conn.scalar(select(func.count()).select_from(pe).where(*where))
        if not total and not conn.scalar(select(func.count()).select_from(pe).where(pe.program == name)):
            abort(404)
        rows = conn.execute(
            select(
                Account.id,
                Account.name,
                Account.owner,
                pe.status,
                pe.exit_reason,
                pe.holdout,
                pe.audience,
                pe.entered_at,
                pe.ended_at,
                pe.arr_at_entry,
                pe.arr_at_end,
            )  # fmt: skip
            .join(Account, Account.id == pe.account_id)
            .where(*where)
            .order_by(pe.entered_at.desc(), pe.id.desc())
            .limit(LISTED)
        ).all()
    filters = {k: v for k, v in {"status": status, "reason": reason, "group": group, "outcome": outcome}.items() if v}
    return render_template("program_accounts.html", name=name, rows=rows, total=total, filters=filters, limit=LISTED)
