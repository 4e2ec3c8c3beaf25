"""A small generated book in the store, linked to every vendor and with score history, for the scale tests.

Every account gets a company record in each CRM (external ids written directly: these tests are about scoring and
planning, not identity resolution), so field writes, tasks and messages are planned for all of them.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, select, text

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.programs.tick import LOCK_KEY
from app.scoring import score_and_store
from app.store.models import Account, Action, BookDay, CurrentScore, ExternalId, OutboxRow, ProgramEnrollment, Score
from connectors.registry import all_connectors
from engine.health_config import load_health_config

AS_OF = date(2026, 6, 30)
SCORE_FIELDS = [c.name for c in Score.__table__.columns if c.name not in ("id", "computed_at")]
CURRENT_FIELDS = [c.name for c in CurrentScore.__table__.columns if c.name != "score_id"]  # ids differ across runs


def load_linked_book(store: Engine, accounts: int = 60) -> None:
    book = generate_book(BookSpec(seed=11, active_accounts=accounts, days=60, as_of=AS_OF))
    load_book(store, book.accounts, book.contacts, book.events)
    with store.begin() as conn:
        ids = conn.scalars(select(Account.id)).all()
        conn.execute(
            ExternalId.__table__.insert(),
            [{"account_id": i, "vendor": c.name, "object": c.company_object, "external_id": f"{c.name}-{i}"}
             for i in ids for c in all_connectors()],
        )  # fmt: skip
        for back in (30, 7):  # history, so the trends are not all missing
            score_and_store(conn, AS_OF - timedelta(days=back), load_health_config())


def _without_clock(payload: dict) -> dict:
    """A field write's payload without `computed_at`, the wall-clock time of the run (like Score.computed_at)."""
    if "fields" not in payload:
        return payload
    return {**payload, "fields": {k: v for k, v in payload["fields"].items() if k != "computed_at"}}


def run_outcome(conn: Connection) -> dict[str, pd.DataFrame]:
    """What a scoring run as of AS_OF left in the store: its scores, each account's current score, the day's
    recorded book, program enrollments, outbox rows and actions, in a stable order."""
    scores = pd.DataFrame(conn.execute(select(*[Score.__table__.c[c] for c in SCORE_FIELDS])
                                       .where(Score.as_of == AS_OF)).all(), columns=SCORE_FIELDS)  # fmt: skip
    outbox = pd.DataFrame(
        [(r.vendor, r.operation, r.account_id, r.status, repr(sorted(_without_clock(r.payload).items())),
          r.dedupe_key if r.operation != "update_fields" else "")
         for r in conn.execute(select(OutboxRow))],
        columns=["vendor", "operation", "account_id", "status", "payload", "dedupe_key"],
    )  # fmt: skip
    actions = pd.DataFrame(
        conn.execute(select(Action.account_id, Action.playbook, Action.step, Action.dedupe_key, Action.status)).all(),
        columns=["account_id", "playbook", "step", "dedupe_key", "status"],
    )
    current = pd.DataFrame(conn.execute(select(*[CurrentScore.__table__.c[c] for c in CURRENT_FIELDS])).all(),
                           columns=CURRENT_FIELDS)  # fmt: skip
    book = pd.DataFrame(conn.execute(select(BookDay.__table__).where(BookDay.as_of == AS_OF)).all(),
                        columns=[c.name for c in BookDay.__table__.columns])  # fmt: skip
    enrollment_columns = ["account_id", "program", "status", "tier", "audience", "holdout", "step"]
    table = ProgramEnrollment.__table__
    enrollments = pd.DataFrame(conn.execute(select(*[table.c[c] for c in enrollment_columns])).all(),
                               columns=enrollment_columns)  # fmt: skip
    return {
        "scores": scores.sort_values("account_id", ignore_index=True),
        "current_scores": current.sort_values("account_id", ignore_index=True),
        # Sums in the database's row order, which sharding changes: equal to the last bits they are not.
        "book_day": book.sort_values(["segment", "owner", "band"], ignore_index=True).round(6),
        "enrollments": enrollments.sort_values(["account_id", "program"], ignore_index=True),
        "outbox": outbox.sort_values(list(outbox.columns), ignore_index=True),
        "actions": actions.sort_values("dedupe_key", ignore_index=True),
    }


def programs_lock(conn: Connection) -> list[tuple[int, str, bool]]:
    """(backend pid, mode, granted) of every holder of and waiter for this schema's programs lock."""
    query = text(
        "SELECT pid, mode, granted FROM pg_locks WHERE locktype = 'advisory' AND classid = :key"
        " AND objid = hashtext(current_schema())::oid AND objsubid = 2 ORDER BY pid"
    )
    return [tuple(row) for row in conn.execute(query, {"key": LOCK_KEY}).all()]


def wait_for_locks(observer: Connection, condition, attempts: int = 600) -> list:
    """Poll pg_locks until `condition` holds for its rows (a wait for another session to reach a lock)."""
    for _ in range(attempts):
        locks = programs_lock(observer)
        observer.rollback()  # a fresh snapshot of pg_locks per poll
        if condition(locks):
            return locks
        time.sleep(0.1)
    raise AssertionError(f"the expected lock state never came: {locks}")
