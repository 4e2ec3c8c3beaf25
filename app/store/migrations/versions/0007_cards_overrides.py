"""cards: band overrides, program enrollment requests, the computed band behind an override

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "band_overrides",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_band_overrides_account_expiry", "band_overrides", ["account_id", "expires_at"])
    op.create_table(
        "program_enrollments",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("program", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_program_enrollments_account", "program_enrollments", ["account_id", "status"])
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("band_computed", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("band_computed")
    op.drop_index("ix_program_enrollments_account", "program_enrollments")
    op.drop_table("program_enrollments")
    op.drop_index("ix_band_overrides_account_expiry", "band_overrides")
    op.drop_table("band_overrides")
