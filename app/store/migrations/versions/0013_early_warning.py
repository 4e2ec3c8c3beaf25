"""scores: the early-warning flag of the longer-horizon churn model and its horizon

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("early_warning", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("warning_horizon_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("warning_horizon_days")
        batch_op.drop_column("early_warning")
