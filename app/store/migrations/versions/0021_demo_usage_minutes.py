"""usage days keep session minutes: a product log with session lengths (the demo's book) stored as daily sums

Revision ID: 0021_demo
Revises: 0020_tick
Create Date: 2026-12-05 02:00:00

`cse demo` and the benches load their generated book's product usage (logins, feature use, API calls,
self-service) as one usage row per account and day, as `cse import` does, instead of ~900,000 event rows. Its
logins carry session minutes, which the daily rollups sum (`account_days.session_minutes`); this column keeps them.
An import's rows, which have no session lengths, keep 0.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_demo"
down_revision = "0020_tick"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage_days", sa.Column("session_minutes", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage_days") as batch_op:
        batch_op.drop_column("session_minutes")
