"""programs: enrollment state on program_enrollments, the enrollment event history, onboarding milestones

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ENROLLMENT_COLUMNS = (
    ("version", sa.Integer()),
    ("audience", sa.String(48)),
    ("tier", sa.Integer()),
    ("step", sa.Integer()),
    ("holdout", sa.Boolean()),
    ("entered_at", sa.DateTime()),
    ("tier_entered_at", sa.DateTime()),
    ("last_step_at", sa.DateTime()),
    ("next_due_at", sa.DateTime()),
    ("exit_reason", sa.String(16)),
    ("ended_at", sa.DateTime()),
    ("arr_at_entry", sa.Float()),
    ("arr_at_end", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("program_enrollments", schema=None) as batch_op:
        for name, kind in ENROLLMENT_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_program_enrollments_due", "program_enrollments", ["status", "next_due_at"])
    op.create_index(
        "ux_program_enrollments_active",
        "program_enrollments",
        ["program", "account_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "program_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("enrollment_id", BigId, sa.ForeignKey("program_enrollments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("program", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("step", sa.String(48), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("problem", sa.String(48), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("dedupe_key", sa.String(128), nullable=False, unique=True),
    )
    op.create_index("ix_program_events_account_at", "program_events", ["account_id", "at"])
    op.create_index("ix_program_events_enrollment", "program_events", ["enrollment_id"])
    op.create_table(
        "program_milestones",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("milestone", sa.String(48), primary_key=True),
        sa.Column("met_on", sa.Date(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("program_milestones")
    op.drop_index("ix_program_events_enrollment", "program_events")
    op.drop_index("ix_program_events_account_at", "program_events")
    op.drop_table("program_events")
    op.drop_index("ux_program_enrollments_active", "program_enrollments")
    op.drop_index("ix_program_enrollments_due", "program_enrollments")
    with op.batch_alter_table("program_enrollments", schema=None) as batch_op:
        for name, _ in reversed(ENROLLMENT_COLUMNS):
            batch_op.drop_column(name)
