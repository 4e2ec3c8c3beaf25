"""Helpers for the program tests: a small book in the store and a scored frame the tests set by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, insert, select

from app.programs.definitions import ActiveProgram
from app.store.load import load_accounts, load_contacts
from app.store.models import Action, ExternalId, OutboxRow, ProgramEnrollment, program_history
from connectors.registry import connector
from engine.programs.definition import parse_program
from tests.factories import accounts_frame, contacts_frame

T0 = datetime(2026, 6, 1, 9, 0)


def book(engine: Engine, n: int = 4, **overrides) -> list[int]:
    """`n` accounts with one champion each (seen recently, so in-app messages reach them); their ids."""
    accounts = accounts_frame(n, **overrides)
    with engine.begin() as conn:
        ids = load_accounts(conn, accounts)
        contacts = contacts_frame(accounts).assign(last_seen=T0)
        load_contacts(conn, contacts, ids)
        crm = connector("hubspot")
        conn.execute(insert(ExternalId), [
            {"account_id": ids[k], "vendor": crm.name, "object": crm.company_object, "external_id": f"co-{k}"}
            for k in accounts["key"]
        ])  # fmt: skip
    return [ids[k] for k in accounts["key"]]


def scored(ids: list[int], risk: list[float], segment: str = "smb") -> pd.DataFrame:
    return pd.DataFrame(
        {"health": [100.0 - r for r in risk], "risk": risk, "band": "at_risk", "segment": segment,
         "expansion_type": None, "arr": 10_000.0},
        index=pd.Index(ids, name="account_id"),
    )  # fmt: skip


def program(text: str) -> dict[str, ActiveProgram]:
    parsed = parse_program(text, "<test>")
    return {parsed.program: ActiveProgram(parsed, 0, "<test>")}


def sent(engine: Engine, kind: str = "step_sent") -> list[tuple[int, str]]:
    """(account, step) of the history rows of this kind (program_history: the stored events and the derived ones)."""
    history = program_history
    with engine.connect() as conn:
        return sorted(conn.execute(select(history.c.account_id, history.c.step).where(history.c.kind == kind)).all())


def actions(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(Action.account_id, Action.step)).all())


def outbox_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(OutboxRow.id)).all())


def enrollments(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(ProgramEnrollment).order_by(ProgramEnrollment.id)).all()


def side_by_side(work: Callable[[], object], n: int = 2) -> list[BaseException]:
    """Run `work` in `n` threads released at once (concurrent ticks); the errors they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as error:  # noqa: BLE001 - a test asserts there were none
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
