"""web app speed: the current-score table (each account's latest score) and the book per scoring day, backfilled

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 17:30:00

The backfill fills current_scores from the whole score history and records the book (book_days, its splits and
months) of every scoring day of the last 90 days before the newest (the dashboard's trend window), each from the
latest score on or before the day: one history search per past day, so a store with a long daily history takes a
while (minutes at 100,000 accounts x 90 days), once.
"""

from datetime import timedelta

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
    # The day's book is the product's own sum (the one scoring records), not a second copy of it in SQL here.
    from app.store.book_days import record_book_day

    for day in sorted(days):
        record_book_day(conn, day)


def downgrade() -> None:
    for name in ACCOUNT_INDEXES:
        op.drop_index(name, "accounts")
    op.drop_index("ix_actions_kind_created", "actions")
    for table in ("book_day_months", "book_day_splits", "book_days"):
        op.drop_table(table)
    for name in CURRENT_INDEXES:
        op.drop_index(name, "current_scores")
    op.drop_table("current_scores")
