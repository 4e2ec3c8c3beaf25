"""The programs admin page: every program with its active version and whether it runs; a draft validated by the
loader `cse programs validate` uses (problems at the file's line and field); switching a program off and on (in the
audit log); and the audience a draft's entry condition matches today, per audience variant and tier."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.store.models import ProgramEnrollment
from app.users import audit
from app.web import context
from app.web.admin import admin
from app.web.auth import current_user
from app.web.program_definitions import definitions, parse

# The program loader and the store's bulk helpers load pandas: the handlers import them, the web process's start-up
# does not.
if TYPE_CHECKING:
    from engine.programs.definition import Program

MAX_PROGRAM_BYTES = 100_000
# `where:line: field: message` (or without the line), as engine/programs/definition.py words a problem.
PROBLEM = re.compile(r"^(?P<where>[^:]+?)(?::(?P<line>\d+))?: (?P<rest>.*)$", re.S)
FIELD = re.compile(r"^(?P<field>[A-Za-z0-9_.]+): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class Listed:
    name: str
    version: int
    author: str
    program: Program | None
    problems: list[str]
    enabled: bool
    switched: Any  # the last switch (who, when) or None


def problem_parts(problem: str) -> dict[str, Any]:
    """A problem line split into file, line and field for the page (the whole text when it does not split)."""
    match = PROBLEM.match(problem)
    if not match:
        return {"file": None, "line": None, "field": None, "message": problem}
    field = FIELD.match(match["rest"])
    return {
        "file": match["where"],
        "line": int(match["line"]) if match["line"] else None,
        "field": field["field"] if field else None,
        "message": field["message"] if field else match["rest"],
    }


def _listed() -> list[Listed]:
    from app.programs.switches import switches

    with context.engine().connect() as conn:
        found = definitions(conn)
        switched = switches(conn)
    out = []
    for name, d in found.items():
        switch = switched.get(name)
        out.append(Listed(name, d.active.version, d.active.author, d.program, list(d.problems),
                          switch is None or switch.enabled, switch))  # fmt: skip
    return out


@admin.get("/programs")
def programs():
    """Every program: version, on or off, entry condition, enrollments by status; and the requests from cards."""
    with context.engine().connect() as conn:
        counts = conn.execute(
            select(ProgramEnrollment.program, ProgramEnrollment.status, func.count()).group_by(
                ProgramEnrollment.program, ProgramEnrollment.status
            )
        ).all()
    by_program: dict[str, dict[str, int]] = {}
    for program, status, n in counts:
        by_program.setdefault(program, {})[status] = int(n)
    return render_template("programs.html", programs=_listed(), counts=by_program)


def _known(name: str):
    from app.programs.definitions import program_versions, programs_dir_of

    directory = programs_dir_of(context.settings())
    with context.engine().connect() as conn:
        versions = program_versions(conn, name, directory)
    if not versions:
        abort(404)
    return versions[-1]


def _draft() -> str:
    text = request.form.get("content")
    if not isinstance(text, str) or len(text.encode()) > MAX_PROGRAM_BYTES:
        abort(400)
    return text.replace("\r\n", "\n")


def audience(program: Program, as_of: date) -> dict[str, Any]:
    """How many of the accounts active on `as_of` the entry condition matches, scored as the next scoring would
    score them (the stored models and overrides included), by audience variant and tier, with the control group.
    Scoring the book takes a while on a large one: the admin asks for it, it never runs on a page view."""
    from app.cards.overrides import apply_band_overrides
    from app.ml.auto import scoring_calibration
    from app.ml.scorer import load_scoring_artifact
    from app.scoring import compute_scores
    from engine.health_config import load_health_config
    from engine.programs.plan import condition_frame, held_out, membership

    settings, engine = context.settings(), context.engine()
    config = load_health_config(settings.health_config)
    # The models scoring would use, as they are: a page never trains or refreshes one (models_for may).
    artifact = load_scoring_artifact(settings.data_dir)
    calibration = scoring_calibration(settings.data_dir, settings.churn_horizon_days)
    with engine.connect() as conn:
        scored = compute_scores(conn, as_of, config, artifact=artifact, calibration=calibration)
        if not scored.empty:
            scored = apply_band_overrides(conn, scored, as_of)
    if scored.empty:
        return {"accounts": 0, "matched": 0, "control": 0, "variants": [], "tiers": []}
    state = membership(program, condition_frame(scored))
    entering = state[state["entry"].to_numpy()]
    variants = entering["audience"].value_counts()
    tiers = entering["tier"].value_counts()
    control = held_out(program.program, entering.index.to_numpy(), program.holdout)
    return {
        "accounts": len(scored),
        "matched": len(entering),
        "control": int(control.sum()),
        "variants": [(v, int(variants.get(v, 0))) for v in (*program.audiences, "default")],
        "tiers": [(t, int(tiers.get(i, 0))) for i, t in enumerate(program.tier_names())],
    }


@admin.route("/programs/<name>", methods=["GET", "POST"])
def program(name: str):
    """The active version in an editor; posting it back validates the draft, or previews its audience."""
    active = _known(name)
    text, problems, checked, reach = active.content, [], False, None
    if request.method == "POST":
        text = _draft()
        parsed, problems = parse(text, name)
        checked = True
        if parsed is not None and request.form.get("do") == "audience":
            reach = audience(parsed, date.today())
    return render_template(
        "program_editor.html",
        name=name,
        active=active,
        content=text,
        checked=checked,
        problems=[problem_parts(p) for p in problems],
        reach=reach,
        today=date.today(),
    )


@admin.post("/programs/<name>/<any(enable, disable):verb>")
def switch(name: str, verb: str):
    """Switch a program on or off (recorded in the audit log); the next scoring and tick follow it."""
    from app.programs.switches import switch_program

    _known(name)
    user = current_user()
    with context.engine().begin() as conn:
        switch_program(conn, name, verb == "enable", user.username)
        audit(conn, user.username, f"program.{verb}", name)
    state = "on: the next scoring enrolls in it" if verb == "enable" else "off: it enrolls no one and sends nothing"
    flash(f"Program {name} is {state}.", "ok")
    return redirect(url_for("admin.programs"))
