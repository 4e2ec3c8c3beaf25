"""Migration 0024: the rows a scoring run writes per account (scores, current score, enrollments, milestones) carry
no foreign key, checked on every row written; a trigger on `accounts` deletes them with their account instead."""

from __future__ import annotations

from datetime import date, datetime

from alembic import command
from sqlalchemy import delete, func, insert, inspect, select

from app.store.db import alembic_config, upgrade_schema
from app.store.load import load_accounts
from app.store.models import (
    Account,
    CurrentScore,
    ProgramEnrollment,
    ProgramEvent,
    ProgramMilestone,
    Score,
)
from tests.factories import accounts_frame

PER_ACCOUNT = (Score, CurrentScore, ProgramEnrollment, ProgramMilestone, ProgramEvent)
TRIGGERED = ("scores", "current_scores", "program_enrollments", "program_milestones")
DAY = date(2026, 6, 30)
AT = datetime(2026, 6, 30, 9)


def _accounts_with_rows(store, n: int) -> list[int]:
    """`n` accounts, each with a score, its current score, an enrollment with an event, and a milestone."""
    with store.begin() as conn:
        ids = sorted(load_accounts(conn, accounts_frame(n)).values())
        for account in ids:
            score = conn.execute(insert(Score).values(account_id=account, as_of=DAY, computed_at=AT, health=50.0)
                                 .returning(Score.id)).scalar_one()  # fmt: skip
            conn.execute(insert(CurrentScore).values(account_id=account, score_id=score, as_of=DAY, health=50.0))
            enrollment = conn.execute(
                insert(ProgramEnrollment).values(account_id=account, program="retention", status="active",
                                                 requested_by="test", source="engine", requested_at=AT)
                .returning(ProgramEnrollment.id)
            ).scalar_one()  # fmt: skip
            event = {"program": "retention", "kind": "escalated", "at": AT, "dedupe_key": "escalated:tier1"}
            conn.execute(insert(ProgramEvent).values(enrollment_id=enrollment, account_id=account, **event))
            conn.execute(insert(ProgramMilestone).values(account_id=account, milestone="first_value", met_on=DAY))
    return ids


def _accounts_per_table(store) -> dict[str, set[int]]:
    with store.connect() as conn:
        return {model.__tablename__: set(conn.scalars(select(model.account_id))) for model in PER_ACCOUNT}


def test_deleting_accounts_deletes_their_rows_and_keeps_the_others(store):
    ids = _accounts_with_rows(store, 4)
    assert _accounts_per_table(store) == {model.__tablename__: set(ids) for model in PER_ACCOUNT}
    with store.begin() as conn:  # two accounts in one statement: the trigger sees both
        conn.execute(delete(Account).where(Account.id.in_(ids[:2])))
    assert _accounts_per_table(store) == {model.__tablename__: set(ids[2:]) for model in PER_ACCOUNT}


def test_the_run_tables_have_no_account_key_and_a_step_back_restores_it(store):
    def keyed() -> set[str]:
        with store.connect() as conn:
            found = inspect(conn)
            return {table for table in TRIGGERED
                    if any(key["referred_table"] == "accounts" for key in found.get_foreign_keys(table))}  # fmt: skip

    assert keyed() == set()
    ids = _accounts_with_rows(store, 2)
    command.downgrade(alembic_config(store), "0023_firstrun")
    assert keyed() == set(TRIGGERED)
    with store.connect() as conn:  # the rebuilt tables kept their rows
        assert conn.scalar(select(func.count()).select_from(ProgramEnrollment)) == 2
    with store.begin() as conn:  # the key's own cascade, no trigger any more
        conn.execute(delete(Account).where(Account.id == ids[0]))
    assert _accounts_per_table(store)["scores"] == {ids[1]}
    upgrade_schema(store)
    assert keyed() == set()
    with store.begin() as conn:
        conn.execute(delete(Account).where(Account.id == ids[1]))
    assert _accounts_per_table(store) == {model.__tablename__: set() for model in PER_ACCOUNT}
