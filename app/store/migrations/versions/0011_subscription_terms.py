"""subscription terms: imported billing history (base plan and add-ons) for point-in-time churn and expansion

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscription_terms",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("term_key", sa.String(128), nullable=False),
        sa.Column("plan", sa.String(64), nullable=True),
        sa.Column("is_addon", sa.Boolean(), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("seats", sa.Float(), nullable=True),
        sa.Column("billing_period", sa.String(16), nullable=True),
        sa.Column("discount", sa.Float(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.UniqueConstraint("source", "term_key"),
    )
    op.create_index("ix_subscription_terms_account_start", "subscription_terms", ["account_id", "start_date"])


def downgrade() -> None:
    op.drop_index("ix_subscription_terms_account_start", "subscription_terms")
    op.drop_table("subscription_terms")
