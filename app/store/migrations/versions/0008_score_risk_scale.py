"""scores: the one risk scale (calibrated churn probability within the horizon x 100) and what produced it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_source", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("risk_source")
        batch_op.drop_column("risk")
