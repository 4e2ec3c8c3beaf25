"""web app: programs switched off by an admin, the raw records of each object's last sync (the mapping editor's
preview sample), and an index covering the dashboard's program outcomes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OUTCOME_COLUMNS = ("program", "status", "exit_reason", "holdout", "entered_at", "arr_at_entry", "arr_at_end")


def upgrade() -> None:
    op.create_table(
        "program_switches",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "sync_samples",
        sa.Column("vendor", sa.String(16), primary_key=True),
        sa.Column("object", sa.String(32), primary_key=True),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_program_enrollments_outcomes", "program_enrollments", list(OUTCOME_COLUMNS))


def downgrade() -> None:
    op.drop_index("ix_program_enrollments_outcomes", "program_enrollments")
    op.drop_table("sync_samples")
    op.drop_table("program_switches")
