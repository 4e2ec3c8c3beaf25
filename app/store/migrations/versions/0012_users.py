"""web app: users with roles, the audit log of changes, indexes the accounts list sorts and filters on

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACCOUNT_INDEXES = {"ix_accounts_name": ["name"], "ix_accounts_owner": ["owner"], "ix_accounts_segment": ["segment"]}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    for name, columns in ACCOUNT_INDEXES.items():
        op.create_index(name, "accounts", columns)
    # The dashboard's health trend (scores by day and band) and its seat changes per month (rare rows).
    op.create_index("ix_scores_as_of_band", "scores", ["as_of", "band", "health"])
    seat_changes = sa.text("seat_delta != 0")
    op.create_index(
        "ix_account_days_seat_changes",
        "account_days",
        ["day"],
        sqlite_where=seat_changes,
        postgresql_where=seat_changes,
    )


def downgrade() -> None:
    op.drop_index("ix_account_days_seat_changes", "account_days")
    op.drop_index("ix_scores_as_of_band", "scores")
    for name in ACCOUNT_INDEXES:
        op.drop_index(name, "accounts")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("users")
