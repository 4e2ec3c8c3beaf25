"""Program outcomes for the dashboard, the same figures as `cse programs report` (app/programs/report.py), and the
enrollments behind each figure: who entered, is active, completed, exited (by reason), succeeded, was held out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from sqlalchemy import Connection, and_, func, or_, select

from app.store.models import Account, ProgramEnrollment
from app.web import context
from app.web.auth import requires

program_views = Blueprint("programs", __name__, url_prefix="/programs", template_folder="templates")
STATUSES = ("active", "completed", "exited")
GROUPS = ("treated", "control")
LISTED = 500


def _definitions(conn: Connection) -> tuple[dict, str | None]:
    """Every program's active definition, switched off or not (its success outcome is still what it measured);
    with a program that no longer loads, none (the report then counts `recovered` as success) and the reason."""
    from app.programs.definitions import active_programs, programs_dir_of
    from engine.programs.definition import ProgramError

    try:
        return active_programs(conn, programs_dir_of(context.settings())), None
    except ProgramError as error:
        return {}, str(error)


def dashboard_outcomes(conn: Connection) -> dict[str, Any]:
    """Per program: its title and the report's figures (entered, active, completed, exited by reason, success rate,
    uplift with its interval, revenue protected, expansion won); programs nobody entered yet are left out."""
    from app.programs.report import programs_report

    definitions, problem = _definitions(conn)
    report = programs_report(conn, definitions)
    rows = [
        {"name": name, "title": definitions[name].program.title if name in definitions else name, **figures}
        for name, figures in report.items()
        if figures["entered"]
    ]
    return {"programs": rows, "problem": problem}


def _success(conn: Connection, name: str):
    """The condition an enrollment met to count as a success of program `name` (as engine/programs/outcomes.py)."""
    definitions, _ = _definitions(conn)
    success = tuple(definitions[name].program.success) if name in definitions else ("recovered",)
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
