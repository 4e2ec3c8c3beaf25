"""program tick speed: a partial index on the planned actions, which every release to the outbox looks up

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 21:00:00

Releasing actions to the outbox (every scheduler tick, every scoring) selects the actions still `planned`; without
an index that reads the whole, ever-growing actions table. The index holds only the planned rows, so it stays as
small as the work waiting, and costs nothing to keep for the released ones.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PLANNED = sa.text("status = 'planned'")


def upgrade() -> None:
    op.create_index("ix_actions_planned", "actions", ["kind", "due"], sqlite_where=PLANNED, postgresql_where=PLANNED)


def downgrade() -> None:
    op.drop_index("ix_actions_planned", table_name="actions")
