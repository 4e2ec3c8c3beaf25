"""Programs an admin switched off in the web app. An off program is left out of the deployment's programs
(app/programs/definitions.load_programs), so the next scoring enrolls no one in it and the next tick sends none of
its steps; its enrollments wait where they are until it is switched on again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from app.store.bulk import upsert
from app.store.models import ProgramSwitch


def switched_off(conn: Connection) -> set[str]:
    return set(conn.execute(select(ProgramSwitch.program).where(ProgramSwitch.enabled.is_(False))).scalars())


def switches(conn: Connection) -> dict[str, Any]:
    """Every program's last switch (enabled, changed_by, changed_at); programs never switched have none."""
    table = ProgramSwitch.__table__
    return {row.program: row for row in conn.execute(select(table))}


def switch_program(conn: Connection, program: str, enabled: bool, user: str, now: datetime | None = None) -> None:
    row = {"program": program, "enabled": enabled, "changed_by": user, "changed_at": now or datetime.now()}
    upsert(conn, ProgramSwitch.__table__, [row], conflict=["program"], update=["enabled", "changed_by", "changed_at"])
