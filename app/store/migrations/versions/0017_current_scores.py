"""web app speed: the current-score table (each account's latest score) and the book per scoring day, backfilled

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 17:30:00

The backfill fills current_scores from the whole score history and records the book (book_days, its splits and
months) of every scoring day of the last 90 days before the newest (the dashboard's trend window), each from the
latest score on or before the day: one history search per past day, so a store with a long daily history takes a
while (minutes at 100,000 accounts x 90 days), once.

The book is summed by a frozen copy of the app's recording (app/store/book_days.py as of this revision), on the
tables as this revision leaves them: a migration must keep doing what it did when the app's code moves on.
"""

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TREND_DAYS = 90
COPIED = ("health", "band", "risk", "churn_probability", "trend_7d", "trend_30d", "expansion_score", "expansion_type",
          "revenue_potential")  # fmt: skip
CURRENT_INDEXES = {
    "ix_current_scores_band_health": ["band", "health"],
    "ix_current_scores_health": ["health"],
    "ix_current_scores_churn": ["churn_probability"],
    "ix_current_scores_potential": ["revenue_potential"],
}
ACCOUNT_INDEXES = {"ix_accounts_arr": "arr", "ix_accounts_renewal_date": "renewal_date"}
RANKED = "SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC, id DESC) AS score_rank FROM scores"


def _keys() -> list[sa.Column]:
    """The day, segment and CSM that key each recorded book table."""
    return [
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("segment", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "current_scores",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("score_id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("health", sa.Float(), nullable=True),
        sa.Column("band", sa.String(16), nullable=True),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("churn_probability", sa.Float(), nullable=True),
        sa.Column("trend_7d", sa.Float(), nullable=True),
        sa.Column("trend_30d", sa.Float(), nullable=True),
        sa.Column("expansion_score", sa.Float(), nullable=True),
        sa.Column("expansion_type", sa.String(16), nullable=True),
        sa.Column("revenue_potential", sa.Float(), nullable=True),
    )
    for name, columns in CURRENT_INDEXES.items():
        op.create_index(name, "current_scores", columns)
    sums = ("accounts", "health_sum", "health_n", "potential_sum", "arr_sum", "onboarding", "instrumented",
            "first_value", "graduated")  # fmt: skip
    op.create_table(
        "book_days",
        *_keys(),
        sa.Column("band", sa.String(16), primary_key=True),
        *[sa.Column(name, sa.Float() if name.endswith("_sum") else sa.Integer(), nullable=False) for name in sums],
    )
    op.create_table(
        "book_day_splits",
        *_keys(),
        sa.Column("band", sa.String(16), primary_key=True),
        sa.Column("split", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(16), primary_key=True),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("potential_sum", sa.Float(), nullable=False),
    )
    op.create_table(
        "book_day_months",
        *_keys(),
        sa.Column("month", sa.Date(), primary_key=True),
        *[sa.Column(name, sa.Float(), nullable=False) for name in ("opening_arr", "churned_arr", "seat_change")],
    )
    # The workload's open tasks (CRM tasks by kind and age, with their account); the accounts list's sorts.
    op.create_index("ix_actions_kind_created", "actions", ["kind", "created_at", "account_id"])
    for name, column in ACCOUNT_INDEXES.items():
        op.create_index(name, "accounts", [column])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    copied = ", ".join(COPIED)
    newest_rows = f"SELECT account_id, id, as_of, {copied} FROM ({RANKED}) r WHERE score_rank = 1"
    conn.execute(sa.text(f"INSERT INTO current_scores (account_id, score_id, as_of, {copied}) {newest_rows}"))
    newest = conn.execute(sa.text("SELECT max(as_of) AS newest FROM scores").columns(newest=sa.Date)).scalar()
    if newest is None:
        return
    days = conn.execute(
        sa.text("SELECT DISTINCT as_of FROM scores WHERE as_of > :since")
        .bindparams(sa.bindparam("since", newest - timedelta(days=TREND_DAYS), sa.Date))
        .columns(as_of=sa.Date)
    ).scalars()
    for day in sorted(days):
        latest = _latest_on_or_before(day)
        _record_book(conn, day, latest)
        _record_months(conn, day)


# The frozen recording: the tables it reads and writes, with only the columns it uses.
MONTHS, ONBOARDING_DAYS, GRADUATION_DAYS, HEALTH_BUCKETS = 12, 180, 90, 10
ACCOUNTS = sa.table(
    "accounts", sa.column("id", sa.Integer), sa.column("segment", sa.String), sa.column("owner", sa.String),
    sa.column("arr", sa.Float), sa.column("seats_purchased", sa.Integer), sa.column("status", sa.String),
    *(sa.column(name, sa.Date) for name in ("customer_since", "churned_at", "first_value_at", "first_activity_at")),
)  # fmt: skip
SCORES = sa.table(
    "scores", sa.column("id", sa.BigInteger), sa.column("account_id", sa.Integer), sa.column("as_of", sa.Date),
    sa.column("band", sa.String), sa.column("health", sa.Float), sa.column("revenue_potential", sa.Float),
    sa.column("expansion_type", sa.String),
)  # fmt: skip
ACCOUNT_DAYS = sa.table(
    "account_days", sa.column("account_id", sa.Integer), sa.column("day", sa.Date), sa.column("seat_delta", sa.Float)
)
KEY_COLUMNS = ("as_of", "segment", "owner", "band")
DAY_COLUMNS = (*KEY_COLUMNS, "accounts", "health_sum", "health_n", "potential_sum", "arr_sum", "onboarding",
               "instrumented", "first_value", "graduated")  # fmt: skip
SPLIT_COLUMNS = (*KEY_COLUMNS, "split", "value", "accounts", "potential_sum")
MONTH_COLUMNS = ("as_of", "segment", "owner", "month", "opening_arr", "churned_arr", "seat_change")
BOOK_DAYS, BOOK_DAY_SPLITS, BOOK_DAY_MONTHS = (
    sa.table(name, *(sa.column(c) for c in columns))
    for name, columns in (("book_days", DAY_COLUMNS), ("book_day_splits", SPLIT_COLUMNS),
                          ("book_day_months", MONTH_COLUMNS))
)  # fmt: skip


def _active_on(as_of: date):
    """Customers on `as_of`: joined by then, not churned by then, not deleted in every CRM."""
    a = ACCOUNTS.c
    return sa.and_(
        sa.or_(a.customer_since.is_(None), a.customer_since <= as_of),
        sa.or_(a.churned_at.is_(None), a.churned_at > as_of),
        a.status != "deleted",
        ~sa.and_(a.status == "churned", a.churned_at.is_(None)),
    )


def _latest_on_or_before(as_of: date):
    """Each account's latest score on or before `as_of` (by as_of, then id)."""
    s = SCORES.c
    columns = (s.account_id, s.band, s.health, s.revenue_potential, s.expansion_type)
    order = (s.as_of.desc(), s.id.desc())
    rank = sa.func.row_number().over(partition_by=s.account_id, order_by=order).label("rank")
    ranked = sa.select(*columns, rank).where(s.as_of <= as_of).subquery()
    return sa.select(*(ranked.c[c.key] for c in columns)).where(ranked.c.rank == 1).subquery()


def _record_book(conn, as_of: date, latest) -> None:
    """book_days and book_day_splits of the day, from one pass grouped by segment, CSM, band, bucket and type."""
    a = ACCOUNTS.c
    health, expansion = latest.c.health, latest.c.expansion_type
    bucket = sa.case(
        (health.is_(None), ""),
        *((health < 10 * (i + 1), str(i)) for i in range(HEALTH_BUCKETS - 1)),
        else_=str(HEALTH_BUCKETS - 1),
    )
    keys = (sa.func.coalesce(a.segment, ""), sa.func.coalesce(a.owner, ""), sa.func.coalesce(latest.c.band, ""),
            bucket, sa.func.coalesce(expansion, ""))  # fmt: skip
    cohort = a.customer_since > as_of - timedelta(days=ONBOARDING_DAYS)

    def cohort_count(*also):
        return sa.func.sum(sa.case((sa.and_(cohort, *also), 1), else_=0))

    query = (
        sa.select(*keys, sa.func.count(), sa.func.sum(health), sa.func.count(health),
                  sa.func.sum(latest.c.revenue_potential), sa.func.sum(a.arr), cohort_count(),
                  cohort_count(a.first_activity_at.is_not(None)), cohort_count(a.first_value_at.is_not(None)),
                  cohort_count(a.customer_since <= as_of - timedelta(days=GRADUATION_DAYS)))
        .select_from(ACCOUNTS)
        .outerjoin(latest, latest.c.account_id == a.id)
        .where(_active_on(as_of))
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
        conn.execute(BOOK_DAYS.insert(), [dict(zip(DAY_COLUMNS, (as_of, *key, *values), strict=True))
                                          for key, values in days.items()])  # fmt: skip
    if splits:
        conn.execute(BOOK_DAY_SPLITS.insert(), [dict(zip(SPLIT_COLUMNS, (as_of, *key, *values), strict=True))
                                                for key, values in splits.items()])  # fmt: skip


def _month_starts(as_of: date) -> list[date]:
    first, starts = as_of.replace(day=1), []
    for _ in range(MONTHS):
        starts.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return starts[::-1]


def _month_index(column, starts: list[date], before: int, missing: int):
    """Which of the months `column` falls in (0 … 11; 12 after the last), `before` if earlier, `missing` if NULL."""
    ends = [*starts[1:], (starts[-1].replace(day=28) + timedelta(days=4)).replace(day=1)]
    whens = [(column.is_(None), missing), (column < starts[0], before)]
    return sa.case(*whens, *((column < end, i) for i, end in enumerate(ends)), else_=MONTHS)


def _record_months(conn, as_of: date) -> None:
    """Gross and net revenue retention inputs of the twelve months up to the day, per segment and CSM."""
    a, d = ACCOUNTS.c, ACCOUNT_DAYS.c
    starts = _month_starts(as_of)
    keys = (sa.func.coalesce(a.segment, ""), sa.func.coalesce(a.owner, ""))
    joined = _month_index(a.customer_since, starts, before=-1, missing=-1)
    churned = _month_index(a.churned_at, starts, before=-1, missing=MONTHS + 1)
    sums = sa.select(*keys, joined, churned, sa.func.sum(a.arr)).where(a.status != "deleted")
    totals: dict[tuple, list[list[float]]] = {}
    for segment, owner, joined_in, churned_in, arr in conn.execute(sums.group_by(*keys, joined, churned)):
        months = totals.setdefault((segment, owner), [[0.0, 0.0, 0.0] for _ in starts])
        for i in range(max(joined_in + 1, 0), min(churned_in, MONTHS - 1) + 1):
            months[i][0] += float(arr or 0)
            if churned_in == i:
                months[i][1] += float(arr or 0)
    per_seat = a.arr / sa.func.nullif(a.seats_purchased, 0)
    month = _month_index(d.day, starts, before=-1, missing=-1)
    seats = (
        sa.select(*keys, month, sa.func.sum(d.seat_delta * per_seat))
        .select_from(ACCOUNT_DAYS)
        .join(ACCOUNTS, a.id == d.account_id)
        .where(d.day >= starts[0], d.seat_delta != sa.text("0"))
        .group_by(*keys, month)
    )
    for segment, owner, i, change in conn.execute(seats):
        if 0 <= i < MONTHS:
            totals.setdefault((segment, owner), [[0.0, 0.0, 0.0] for _ in starts])[i][2] += float(change or 0)
    rows = [
        dict(zip(MONTH_COLUMNS, (as_of, segment, owner, start, *figures), strict=True))
        for (segment, owner), months in totals.items()
        for start, figures in zip(starts, months, strict=True)
    ]
    if rows:
        conn.execute(BOOK_DAY_MONTHS.insert(), rows)


def downgrade() -> None:
    for name in ACCOUNT_INDEXES:
        op.drop_index(name, "accounts")
    op.drop_index("ix_actions_kind_created", "actions")
    for table in ("book_day_months", "book_day_splits", "book_days"):
        op.drop_table(table)
    for name in CURRENT_INDEXES:
        op.drop_index(name, "current_scores")
    op.drop_table("current_scores")
