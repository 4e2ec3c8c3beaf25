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

from sqlalchemy import Connection, and_, case, func, select, text

from app.store.active import accounts_active_on
from app.store.models import Account, AccountDay, BookDay, BookDayMonth, BookDaySplit, CurrentScore, Score
from engine.programs.milestone_list import ONBOARDING_DAYS as GRADUATION_DAYS  # the onboarding program's 90 days

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


def _record_book(conn: Connection, as_of: date, latest) -> None:
    """book_days and book_day_splits from one pass over the day's customers, grouped by segment, CSM, band,
    health bucket and expansion type; the two tables are sums of those groups."""
    health, expansion = latest.c.health, latest.c.expansion_type
    bucket = case(
        (health.is_(None), ""),
        *((health < 10 * (i + 1), str(i)) for i in range(HEALTH_BUCKETS - 1)),
        else_=str(HEALTH_BUCKETS - 1),
    )
    keys = (func.coalesce(Account.segment, ""), func.coalesce(Account.owner, ""), func.coalesce(latest.c.band, ""),
            bucket, func.coalesce(expansion, ""))  # fmt: skip
    cohort = Account.customer_since > as_of - timedelta(days=ONBOARDING_DAYS)

    def cohort_count(*also):
        return func.sum(case((and_(cohort, *also), 1), else_=0))

    query = (
        select(*keys, func.count(), func.sum(health), func.count(health), func.sum(latest.c.revenue_potential),
               func.sum(Account.arr), cohort_count(), cohort_count(Account.first_activity_at.is_not(None)),
               cohort_count(Account.first_value_at.is_not(None)),
               cohort_count(Account.customer_since <= as_of - timedelta(days=GRADUATION_DAYS)))
        .select_from(Account)
        .outerjoin(latest, latest.c.account_id == Account.id)
        .where(accounts_active_on(as_of))
        .group_by(*keys)
    )  # fmt: skip
    days: dict[tuple, list] = {}
    splits: dict[tuple, list] = {}
    for segment, owner, band, bucket_of, type_of, n, *sums in conn.execute(query):
        sums = [value or 0 for value in sums]  # counts stay integers
        day = days.setdefault((segment, owner, band), [0] * (len(DAY_COLUMNS) - len(KEY_COLUMNS)))
        for i, value in enumerate((n, *sums)):
            day[i] += value
        for split, value in (("health", bucket_of), ("expansion", type_of)):
            if value:
                entry = splits.setdefault((segment, owner, band, split, value), [0, 0.0])
                entry[0] += n
                entry[1] += sums[2]  # the revenue potential
    if days:
        conn.execute(BookDay.__table__.insert(), [dict(zip(DAY_COLUMNS, (as_of, *key, *values), strict=True))
                                                  for key, values in days.items()])  # fmt: skip
    if splits:
        conn.execute(BookDaySplit.__table__.insert(), [dict(zip(SPLIT_COLUMNS, (as_of, *key, *values), strict=True))
                                                       for key, values in splits.items()])  # fmt: skip


def _month_index(column, starts: list[date], before: int, missing: int):
    """Which of the months `column` falls in (0 … 11; 12 after the last), `before` if earlier, `missing` if NULL."""
    ends = [*starts[1:], next_month(starts[-1])]
    whens = [(column.is_(None), missing), (column < starts[0], before)]
    return case(*whens, *((column < end, i) for i, end in enumerate(ends)), else_=MONTHS)


def _record_months(conn: Connection, as_of: date) -> None:
    """ARR of the customers at each month's start, less the ARR of those who churned in it (gross), plus the seat
    changes priced at each account's ARR per seat (net). Plan changes carry no price in the canonical model.

    Accounts are summed by the month they became customers and the month they churned in (one pass), and each
    month's figures added up from those sums here: a customer counts from the month after the one it joined in
    until the month it churned in, which counts it as churned."""
    starts = month_starts(as_of)
    keys = (func.coalesce(Account.segment, ""), func.coalesce(Account.owner, ""))
    joined = _month_index(Account.customer_since, starts, before=-1, missing=-1)
    churned = _month_index(Account.churned_at, starts, before=-1, missing=MONTHS + 1)
    sums = select(*keys, joined, churned, func.sum(Account.arr)).where(Account.status != "deleted")
    totals: dict[tuple, list[list[float]]] = {}
    for segment, owner, joined_in, churned_in, arr in conn.execute(sums.group_by(*keys, joined, churned)):
        months = totals.setdefault((segment, owner), [[0.0, 0.0, 0.0] for _ in starts])
        for i in range(max(joined_in + 1, 0), min(churned_in, MONTHS - 1) + 1):
            months[i][0] += float(arr or 0)
            if churned_in == i:
                months[i][1] += float(arr or 0)
    per_seat = Account.arr / func.nullif(Account.seats_purchased, 0)
    month = _month_index(AccountDay.day, starts, before=-1, missing=-1)
    seats = (
        select(*keys, month, func.sum(AccountDay.seat_delta * per_seat))
        .select_from(AccountDay)
        .join(Account, Account.id == AccountDay.account_id)
        .where(AccountDay.day >= starts[0], AccountDay.seat_delta != text("0"))  # the partial index's own term
        .group_by(*keys, month)
    )
    for segment, owner, i, change in conn.execute(seats):
        if 0 <= i < MONTHS:
            totals.setdefault((segment, owner), [[0.0, 0.0, 0.0] for _ in starts])[i][2] += float(change or 0)
    rows = [
        {"as_of": as_of, "segment": segment, "owner": owner, "month": start, "opening_arr": opening,
         "churned_arr": churned_arr, "seat_change": change}
        for (segment, owner), months in totals.items()
        for start, (opening, churned_arr, change) in zip(starts, months, strict=True)
    ]  # fmt: skip
    if rows:
        conn.execute(BookDayMonth.__table__.insert(), rows)


def record_book_day(conn: Connection, as_of: date) -> None:
    """Replace the recorded book of `as_of` with the store's state now (in the caller's transaction)."""
    if conn.dialect.name == "postgresql":  # concurrent runs record one after the other, each seeing the last's rows
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cse-book-day:' || current_schema()))"))
    for table in (BookDay, BookDaySplit, BookDayMonth):
        conn.execute(table.__table__.delete().where(table.as_of == as_of))
    _record_book(conn, as_of, _latest_on_or_before(conn, as_of))
    _record_months(conn, as_of)
