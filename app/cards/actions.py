"""What a CSM can do from a card: request a program enrollment, snooze/override the health band, log a touchpoint.

Every surface posts the same action object; it is validated here (pydantic) and stored in one transaction. An
enrollment is a stored request (`program_enrollments`, status `requested`) that the program engine, when it
exists, picks up; nothing else acts on it yet, and the card says so by showing it as requested.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy import Connection, insert, select, update

from app.cards.model import BAND_LABELS, TOUCHPOINT_KINDS, TOUCHPOINT_SOURCE
from app.cards.program_block import program_title
from app.store.models import ActivityEvent, BandOverride, ProgramEnrollment
from engine.canonical import BANDS_BEST_FIRST

Band = Literal[tuple(b.value for b in BANDS_BEST_FIRST)]  # type: ignore[valid-type]
Text = Annotated[str, Field(min_length=1, max_length=1000)]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Enroll(_Action):
    type: Literal["enroll"]
    program: Annotated[str, Field(min_length=1, max_length=64)]
    note: Annotated[str, Field(max_length=1000)] | None = None


class Override(_Action):
    type: Literal["override"]
    band: Band
    reason: Text
    days: Annotated[int, Field(ge=1, le=90)] = 14


class ClearOverride(_Action):
    type: Literal["clear_override"]


class Touchpoint(_Action):
    type: Literal["touchpoint"]
    kind: Literal[tuple(TOUCHPOINT_KINDS)]  # type: ignore[valid-type]
    note: Text

    @field_validator("note")
    @classmethod
    def _no_control_characters(cls, v: str) -> str:
        return "".join(ch for ch in v if ch.isprintable() or ch in "\n\t")


CardAction = Annotated[Enroll | Override | ClearOverride | Touchpoint, Field(discriminator="type")]
_ADAPTER = TypeAdapter(CardAction)


class ActionRefused(ValueError):
    """The action is not acceptable (400): wrong shape, unknown program."""


def parse_action(data: object, programs: tuple[str, ...]) -> Enroll | Override | ClearOverride | Touchpoint:
    try:
        action = _ADAPTER.validate_python(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'action'}: {e['msg']}" for e in error.errors())
        raise ActionRefused(problems) from None
    if isinstance(action, Enroll) and action.program not in programs:
        raise ActionRefused(f"program: {action.program!r} is not one of {', '.join(programs)}")
    return action


def _enroll(conn: Connection, account_id: int, action: Enroll, actor: str, source: str, now: datetime) -> str:
    """One open request per account and program: asking again while one waits changes nothing."""
    waiting = select(ProgramEnrollment.id).where(
        ProgramEnrollment.account_id == account_id,
        ProgramEnrollment.program == action.program,
        ProgramEnrollment.status == "requested",
    )
    if conn.execute(waiting).first() is not None:
        return f"Enrollment in {program_title(action.program, {})} is already requested"
    conn.execute(
        insert(ProgramEnrollment).values(account_id=account_id, program=action.program, status="requested",
                                         requested_by=actor, source=source, note=action.note, requested_at=now)
    )  # fmt: skip
    return f"Enrollment in {program_title(action.program, {})} requested"


def _end_overrides(conn: Connection, account_id: int, now: datetime) -> int:
    return conn.execute(
        update(BandOverride)
        .where(BandOverride.account_id == account_id, BandOverride.cleared_at.is_(None), BandOverride.expires_at > now)
        .values(cleared_at=now)
    ).rowcount


def _override(conn: Connection, account_id: int, action: Override, actor: str, source: str, now: datetime) -> str:
    """A new override replaces the one in force (ended now), so there is one override per account at a time."""
    _end_overrides(conn, account_id, now)
    expires = now + timedelta(days=action.days)
    conn.execute(
        insert(BandOverride).values(account_id=account_id, band=action.band, reason=action.reason, author=actor,
                                    source=source, created_at=now, expires_at=expires)
    )  # fmt: skip
    return f"Band set to {BAND_LABELS[action.band]} until {expires.date().isoformat()}"


def _touchpoint(conn: Connection, account_id: int, action: Touchpoint, actor: str, source: str, now: datetime) -> str:
    """An activity event like any synced one, so engagement scoring counts it once the day's rollup is rebuilt."""
    from app.store.load import refresh_rollups  # pandas: loaded only when a touchpoint is logged

    conn.execute(
        insert(ActivityEvent).values(
            account_id=account_id, occurred_at=now, kind=TOUCHPOINT_KINDS[action.kind].value, count=1,
            properties={"channel": action.kind, "note": action.note, "author": actor, "surface": source},
            source=TOUCHPOINT_SOURCE, external_id=uuid.uuid4().hex,
        )
    )  # fmt: skip
    refresh_rollups(conn, [account_id], now.date(), now.date())
    return f"{action.kind.capitalize()} logged"


def perform(
    conn: Connection,
    account_id: int,
    action: Enroll | Override | ClearOverride | Touchpoint,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> str:
    """Store the action; returns the confirmation a surface shows."""
    now = now or datetime.now()
    if isinstance(action, Enroll):
        return _enroll(conn, account_id, action, actor, source, now)
    if isinstance(action, Override):
        return _override(conn, account_id, action, actor, source, now)
    if isinstance(action, Touchpoint):
        return _touchpoint(conn, account_id, action, actor, source, now)
    return "Override ended" if _end_overrides(conn, account_id, now) else "No override was in force"
