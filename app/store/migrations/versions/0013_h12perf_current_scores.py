"""web app speed: the current-score table (each account's latest score) and the book per scoring day, backfilled

Revision ID: 0013_h12perf
Revises: 0012
Create Date: 2026-12-04 17:30:00

The backfill fills current_scores from the whole score history and records the book of every scoring day of the
last 90 days before the newest (the dashboard's trend window), each from the latest score on or before the day.
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013_h12perf"
down_revision = "0012"
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
ACTIVE_ON_DAY = """(a.customer_since IS NULL OR a.customer_since <= :day)
  AND (a.churned_at IS NULL OR a.churned_at > :day) AND a.status != 'deleted'
  AND NOT (a.status = 'churned' AND a.churned_at IS NULL)"""


def _ranked(where: str = "") -> str:
    return (f"SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC, id DESC) AS score_rank "
            f"FROM scores {where}")  # fmt: skip


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
    op.create_table(
        "book_days",
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("segment", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("band", sa.String(16), primary_key=True),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("health_sum", sa.Float(), nullable=False),
        sa.Column("health_n", sa.Integer(), nullable=False),
    )
    # The workload's open tasks: CRM tasks by kind and age.
    op.create_index("ix_actions_kind_created", "actions", ["kind", "created_at"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    copied = ", ".join(COPIED)
    newest_rows = f"SELECT account_id, id, as_of, {copied} FROM ({_ranked()}) r WHERE score_rank = 1"
    conn.execute(sa.text(f"INSERT INTO current_scores (account_id, score_id, as_of, {copied}) {newest_rows}"))
    newest = conn.execute(sa.text("SELECT max(as_of) AS newest FROM scores").columns(newest=sa.Date)).scalar()
    if newest is None:
        return
    days = conn.execute(
        sa.text("SELECT DISTINCT as_of FROM scores WHERE as_of > :since")
        .bindparams(sa.bindparam("since", newest - timedelta(days=TREND_DAYS), sa.Date))
        .columns(as_of=sa.Date)
    ).scalars()
    record = sa.text(
        "INSERT INTO book_days (as_of, segment, owner, band, accounts, health_sum, health_n) "
        "SELECT :day, coalesce(a.segment, ''), coalesce(a.owner, ''), coalesce(r.band, ''), count(*), "
        "coalesce(sum(r.health), 0.0), count(r.health) "
        f"FROM accounts a JOIN ({_ranked('WHERE as_of <= :day')}) r ON r.account_id = a.id AND r.score_rank = 1 "
        f"WHERE {ACTIVE_ON_DAY} GROUP BY coalesce(a.segment, ''), coalesce(a.owner, ''), coalesce(r.band, '')"
    ).bindparams(sa.bindparam("day", type_=sa.Date))
    for day in list(days):
        conn.execute(record, {"day": day})


def downgrade() -> None:
    op.drop_index("ix_actions_kind_created", "actions")
    op.drop_table("book_days")
    for name in CURRENT_INDEXES:
        op.drop_index(name, "current_scores")
    op.drop_table("current_scores")
