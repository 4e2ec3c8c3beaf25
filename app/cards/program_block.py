"""The card's program state, from the program engine's own tables: the account's enrollments (active, and ended in
the last RECENT_DAYS) with the step each is at, and its onboarding milestones as recorded after each scoring, with
the on track / behind / stuck rule of engine/programs/milestone_list.py.

Control group: an enrollment held out of a program is followed but never contacted. The card (CSM-facing) says so,
and carries neither its step nor a due date, so nothing on it reads as something to do for that program.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from engine.programs.milestone_list import (
    LABELS,
    MILESTONES,
    ONBOARDING_DAYS,
    TRACKED_DAYS,
    status_of,
)

ONBOARDING_PROGRAM = "onboarding"
RECENT_DAYS = 30  # ended enrollments shown this long after they ended
PROGRAM_LIMIT = 8
STEP_EVENTS = ("step_sent", "step_covered", "step_suppressed", "step_held")
CHANNEL_LABELS = {"crm_task": "CRM task", "inapp_message": "in-app message", "email": "email"}


def iso(value: date | datetime | None) -> str | None:
    """Dates as the card's JSON writes them (datetimes to the second, in the store's local time)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat() if value is not None else None


def _words(key: str) -> str:
    return key.replace("_", " ").capitalize()


def program_title(key: str, titles: dict[str, str]) -> str:
    """The program's title from its file, else its key in words (a CSM never reads a config key)."""
    return titles.get(key) or _words(key)


def enrollment(row, titles: dict[str, str]) -> dict[str, Any]:
    """One enrollment as the card shows it; `row` is a program row of the card's lists statement."""
    control = bool(row.control)
    step = None
    if row.step and not control and row.step_outcome != "step_held":
        step = {"key": row.step, "label": _words(row.step), "channel": row.channel,
                "channel_label": CHANNEL_LABELS.get(row.channel, row.channel),
                "outcome": row.step_outcome.removeprefix("step_"), "at": iso(row.step_at)}  # fmt: skip
    return {
        "program": row.title,
        "title": program_title(row.title, titles),
        "version": row.version,
        "status": row.status,
        "control": control,
        "entered_at": iso(row.since),
        "step": step,
        "next_due_at": None if control or row.status != "active" else iso(row.at),
        "exit_reason": row.detail,
        "ended_at": iso(row.ended),
    }


def _phase(day: int, graduated: bool) -> str:
    if graduated:
        return "graduated"
    return next((phase for _, phase, due, _ in MILESTONES if day <= due), "ended")


def onboarding(customer_since: date | None, last_login: date | None, met: dict[str, date], control: bool,
               today: date) -> dict[str, Any]:  # fmt: skip
    """The onboarding program's milestones for one account: each met (with its day), missed (its day passed) or
    pending, and on track / behind / stuck while in the first ONBOARDING_DAYS. Milestones are recorded for accounts
    younger than TRACKED_DAYS; an older account without any is `tracked: false`."""
    day = (today - customer_since).days if customer_since else None
    tracked = bool(met) or (day is not None and 0 <= day <= TRACKED_DAYS)
    block: dict[str, Any] = {"tracked": tracked, "day": day, "phase": None, "status": None, "control": control,
                             "met": 0, "total": len(MILESTONES), "milestones": []}  # fmt: skip
    if not tracked or day is None:
        return block
    milestones = []
    for key, phase, due, _ in MILESTONES:
        met_on = met.get(key)
        state = "met" if met_on is not None and met_on <= today else "missed" if day >= due else "pending"
        milestones.append({"key": key, "name": LABELS[key], "phase": phase, "due_day": due, "state": state,
                           "met_on": iso(met_on) if state == "met" else None})  # fmt: skip
    missed = sum(m["state"] == "missed" for m in milestones)
    idle = (today - last_login).days if last_login else TRACKED_DAYS
    graduated = any(m["key"] == "graduated" and m["state"] == "met" for m in milestones)
    block.update(
        phase=_phase(day, graduated),
        status=status_of(missed, idle) if 0 <= day <= ONBOARDING_DAYS and not graduated else None,
        met=sum(m["state"] == "met" for m in milestones),
        milestones=milestones,
    )
    return block
