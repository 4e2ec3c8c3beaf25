"""usage days: an imported product log kept as per-account and day sums instead of raw event rows

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COUNTS = ("logins", "feature_uses", "api_calls", "tickets_opened", "tickets_closed", "escalations", "self_service",
          "outreach", "replies", "meetings", "survey_count", "churn_signals", "active_users")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[:2]],
        sa.Column("features_mask", sa.BigInteger(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[2:]],
        sa.Column("types", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "source"),
    )


def downgrade() -> None:
    op.drop_table("usage_days")
