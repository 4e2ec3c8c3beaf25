"""The book on each scoring day, summed for the dashboard so a page reads a few hundred rows, not the whole book.

For every account that was a customer on the day, with its latest score on or before it: accounts, health,
revenue potential, ARR and onboarding milestones per segment, CSM and band (book_days); the same split by health
bucket and by expansion type (book_day_splits); and the revenue retention of the twelve months up to the day per
segment and CSM (book_day_months, over every account not deleted, as GRR/NRR are defined).

Scores are written only when they move (app/scoring.py), so the score rows dated a day are not that day's book;
the day is recorded when its scoring completes: the end of a run (app/rescoring.py), of a sharded run
(app/shards.py) or of a whole-book `score_and_store`, in the same transaction. Recording again replaces the day.
The figures are the book as that scoring saw it, so they equal the run's own summary (`cse score --json`).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, String, and_, case, func, literal, or_, select, text

from app.cards.model import GRADUATION_DAYS
from app.store.active import accounts_active_on
from app.store.models import Account, AccountDay, BookDay, BookDayMonth, BookDaySplit, CurrentScore, Score

MONTHS = 12
ONBOARDING_DAYS = 180  # the funnel's cohort: customers who joined within this many days
HEALTH_BUCKETS = 10  # 0-9, 10-19, ... 90-100
KEY_COLUMNS = ("as_of", "segment", "owner", "band")
DAY_COLUMNS = (*KEY_COLUMNS, "accounts", "health_sum", "health_n", "potential_sum", "arr_sum", "onboarding",
               "instrumented", "first_value", "graduated")  # fmt: skip
SPLIT_COLUMNS = (*KEY_COLUMNS, "split", "value", "accounts", "potential_sum")


def month_starts(as_of: date) -> list[date]:
    """The first days of the twelve months up to `as_of`'s, oldest first."""
    first = as_of.replace(day=1)
    starts = []
    for _ in range(MONTHS):
        starts.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return starts[::-1]


def next_month(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _latest_on_or_before(conn: Connection, as_of: date):
    """Each account's latest score on or before `as_of`: the current row when none is newer than the day (the
    usual case, a run for the newest day), else searched in the history (a backfill of a past day)."""
    newest = conn.scalar(select(func.max(CurrentScore.as_of)))
    if newest is not None and newest <= as_of:
        return CurrentScore.__table__
    columns = (Score.account_id, Score.band, Score.health, Score.revenue_potential, Score.expansion_type)
    ranked = select(
        *columns,
        func.row_number()
        .over(partition_by=Score.account_id, order_by=(Score.as_of.desc(), Score.id.desc()))
        .label("rank"),
    ).where(Score.as_of <= as_of)
    ranked = ranked.subquery()
    return select(*(ranked.c[c.key] for c in columns)).where(ranked.c.rank == 1).subquery()


def _book(as_of: date, latest, *columns, group_by=()):
    """SELECT the day, segment, CSM, band and `columns` over the customers of `as_of` and their latest scores."""
    keys = (func.coalesce(Account.segment, ""), func.coalesce(Account.owner, ""), func.coalesce(latest.c.band, ""))
    return (
        select(literal(as_of, BookDay.as_of.type), *keys, *columns)
        .select_from(Account)
        .outerjoin(latest, latest.c.account_id == Account.id)
        .where(accounts_active_on(as_of))
        .group_by(*keys, *group_by)
    )


def _record_bands(conn: Connection, as_of: date, latest) -> None:
    cohort = Account.customer_since > as_of - timedelta(days=ONBOARDING_DAYS)

    def cohort_count(*also):
        return func.sum(case((and_(cohort, *also), 1), else_=0))

    query = _book(
        as_of, latest, func.count(), func.coalesce(func.sum(latest.c.health), 0.0), func.count(latest.c.health),
        func.coalesce(func.sum(latest.c.revenue_potential), 0.0), func.coalesce(func.sum(Account.arr), 0.0),
        cohort_count(), cohort_count(Account.first_activity_at.is_not(None)),
        cohort_count(Account.first_value_at.is_not(None)),
        cohort_count(Account.customer_since <= as_of - timedelta(days=GRADUATION_DAYS)),
    )  # fmt: skip
    conn.execute(BookDay.__table__.insert().from_select(list(DAY_COLUMNS), query))


def _record_splits(conn: Connection, as_of: date, latest) -> None:
    health = latest.c.health
    bucket = case(*((health < 10 * (i + 1), str(i)) for i in range(HEALTH_BUCKETS - 1)), else_=str(HEALTH_BUCKETS - 1))
    potential = func.coalesce(func.sum(latest.c.revenue_potential), 0.0)
    expansion = latest.c.expansion_type
    for split, value, known in (
        ("health", bucket, health.is_not(None)),
        ("expansion", expansion, expansion.is_not(None)),
    ):
        query = _book(as_of, latest, literal(split, String), value, func.count(), potential, group_by=(value,))
        conn.execute(BookDaySplit.__table__.insert().from_select(list(SPLIT_COLUMNS), query.where(known)))


def _record_months(conn: Connection, as_of: date) -> None:
    """ARR of the customers at each month's start, less the ARR of those who churned in it (gross), plus the seat
    changes priced at each account's ARR per seat (net). Plan changes carry no price in the canonical model."""
    starts = month_starts(as_of)
    keys = (func.coalesce(Account.segment, ""), func.coalesce(Account.owner, ""))
    sums = []
    for start in starts:
        customer = and_(
            or_(Account.customer_since.is_(None), Account.customer_since < start),
            or_(Account.churned_at.is_(None), Account.churned_at >= start),
        )
        sums.append(func.sum(case((customer, Account.arr), else_=0.0)))
        sums.append(func.sum(case((and_(customer, Account.churned_at < next_month(start)), Account.arr), else_=0.0)))
    opening = conn.execute(select(*keys, *sums).where(Account.status != "deleted").group_by(*keys)).all()
    per_seat = Account.arr / func.nullif(Account.seats_purchased, 0)
    in_month = [and_(AccountDay.day >= start, AccountDay.day < next_month(start)) for start in starts]
    seat_sums = [func.sum(case((month, AccountDay.seat_delta * per_seat), else_=0.0)) for month in in_month]
    seats = (
        select(*keys, *seat_sums)
        .select_from(AccountDay)
        .join(Account, Account.id == AccountDay.account_id)
        .where(AccountDay.day >= starts[0], AccountDay.seat_delta != text("0"))  # the partial index's own term
        .group_by(*keys)
    )
    changes = {(segment, owner): values for segment, owner, *values in conn.execute(seats)}
    rows = []
    for segment, owner, *values in opening:
        change = changes.get((segment, owner), [0.0] * MONTHS)
        rows += [{"as_of": as_of, "segment": segment, "owner": owner, "month": start,
                  "opening_arr": float(values[2 * i] or 0), "churned_arr": float(values[2 * i + 1] or 0),
                  "seat_change": float(change[i] or 0)} for i, start in enumerate(starts)]  # fmt: skip
    if rows:
        conn.execute(BookDayMonth.__table__.insert(), rows)


def record_book_day(conn: Connection, as_of: date) -> None:
    """Replace the recorded book of `as_of` with the store's state now (in the caller's transaction)."""
    if conn.dialect.name == "postgresql":  # concurrent runs record one after the other, each seeing the last's rows
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cse-book-day:' || current_schema()))"))
    for table in (BookDay, BookDaySplit, BookDayMonth):
        conn.execute(table.__table__.delete().where(table.as_of == as_of))
    latest = _latest_on_or_before(conn, as_of)
    _record_bands(conn, as_of, latest)
    _record_splits(conn, as_of, latest)
    _record_months(conn, as_of)
