"""The book on each scoring day, kept for the dashboard's health trend: accounts and health per segment, CSM and
band of every account that was a customer that day, with its latest score on or before it.

Scores are written only when they move (app/scoring.py), so the score rows dated a day are not that day's book;
the day's book is recorded when its scoring completes: the end of a run (app/rescoring.py), of a sharded run
(app/shards.py) or of a whole-book `score_and_store`. Recording again replaces the day.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, func, literal, select, text

from app.store.active import accounts_active_on
from app.store.models import Account, BookDay, CurrentScore, Score

COLUMNS = ("as_of", "segment", "owner", "band", "accounts", "health_sum", "health_n")


def _latest_on_or_before(conn: Connection, as_of: date):
    """Each account's latest score on or before `as_of`: the current row when none is newer than the day (the
    usual case, a run for the newest day), else searched in the history (a backfill of a past day)."""
    newest = conn.scalar(select(func.max(CurrentScore.as_of)))
    if newest is not None and newest <= as_of:
        return CurrentScore.__table__
    ranked = select(
        Score.account_id,
        Score.band,
        Score.health,
        func.row_number()
        .over(partition_by=Score.account_id, order_by=(Score.as_of.desc(), Score.id.desc()))
        .label("rank"),
    ).where(Score.as_of <= as_of)
    ranked = ranked.subquery()
    return select(ranked.c.account_id, ranked.c.band, ranked.c.health).where(ranked.c.rank == 1).subquery()


def record_book_day(conn: Connection, as_of: date) -> None:
    """Replace the recorded book of `as_of` with the store's state now (in the caller's transaction)."""
    if conn.dialect.name == "postgresql":  # concurrent runs record one after the other, each seeing the last's rows
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cse-book-day:' || current_schema()))"))
    latest = _latest_on_or_before(conn, as_of)
    keys = (func.coalesce(Account.segment, ""), func.coalesce(Account.owner, ""), func.coalesce(latest.c.band, ""))
    groups = (
        select(literal(as_of, BookDay.as_of.type), *keys, func.count(), func.coalesce(func.sum(latest.c.health), 0.0),
               func.count(latest.c.health))
        .select_from(Account)
        .join(latest, latest.c.account_id == Account.id)
        .where(accounts_active_on(as_of))
        .group_by(*keys)
    )  # fmt: skip
    conn.execute(BookDay.__table__.delete().where(BookDay.as_of == as_of))
    conn.execute(BookDay.__table__.insert().from_select(list(COLUMNS), groups))
