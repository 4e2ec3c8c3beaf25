"""The current-score table: each account's latest score row (by as_of, then id), kept up to date by the statement
that stores scores, so readers of "the book now" (dashboard, accounts list, `cse accounts`) read one row per
account instead of searching the score history for its newest row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, or_, select

from app.store.bulk import dialect_insert, staged_insert
from app.store.models import CurrentScore, Score

if TYPE_CHECKING:
    import pandas as pd

CURRENT = CurrentScore.__table__
# The score columns the current row copies (besides account_id, score_id and as_of).
COPIED = ("health", "band", "risk", "churn_probability", "trend_7d", "trend_30d", "expansion_score", "expansion_type",
          "revenue_potential")  # fmt: skip


def store_scores(conn: Connection, frame: pd.DataFrame, columns: Sequence[str], json_columns: Sequence[str]) -> int:
    """Insert score rows (one per account) and make each the account's current score where it is the newest.

    Only the rows just written are read back (ids above the newest before the insert, within the accounts' id
    span): on PostgreSQL another transaction's committed rows in that span may come along, which is harmless,
    since a row replaces the current one only if it is newer by (as_of, id).
    """
    before = conn.scalar(select(func.max(Score.id))) or 0
    written = staged_insert(conn, Score.__table__, frame, columns, json_columns=json_columns)
    ids = frame["account_id"]
    refresh_current(conn, Score.id > before, Score.account_id.between(int(ids.min()), int(ids.max())))
    return written


def refresh_current(conn: Connection, *where) -> None:
    """Upsert the current rows from the score rows matching `where`, each only over an older current row.

    `where` must select at most one row per account (PostgreSQL refuses to update a row twice in a statement).
    """
    source = select(Score.account_id, Score.id, Score.as_of, *(Score.__table__.c[c] for c in COPIED)).where(*where)
    insert = dialect_insert(conn, CURRENT).from_select(["account_id", "score_id", "as_of", *COPIED], source)
    new = insert.excluded
    newer = or_(new.as_of > CURRENT.c.as_of, (new.as_of == CURRENT.c.as_of) & (new.score_id > CURRENT.c.score_id))
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["account_id"],
            set_={c: new[c] for c in ("score_id", "as_of", *COPIED)},
            where=newer,
        )
    )
