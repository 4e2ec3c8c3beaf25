"""webhook refusals logged by source, size and hash instead of their body

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("body_bytes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))
    # Bodies of refused requests were kept whole; only their digest is kept from now on.
    table = sa.table("webhook_events", sa.column("status", sa.String), sa.column("payload", sa.Text))
    op.execute(table.update().where(table.c.status.in_(("rejected", "malformed", "ignored"))).values(payload=None))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_column("body_sha256")
        batch_op.drop_column("body_bytes")
        batch_op.drop_column("source")
