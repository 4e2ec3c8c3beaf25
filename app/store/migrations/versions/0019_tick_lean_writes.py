"""program tick speed: fewer writes per step sent — no due index on the enrollments, no second foreign key per event

Revision ID: 0019_tick
Revises: 0018
Create Date: 2026-12-04 23:30:00

Every step a tick sends writes an event, an action and an outbox row and moves its enrollment; at 100,000 steps each
index and foreign key check on those rows is paid 100,000 times.

- `ix_program_enrollments_due` (status, next_due_at) is dropped. Every move changes `next_due_at`, so the index got
  a new entry per move, and on PostgreSQL it kept each move from being a heap-only update: all five indexes of the
  table got a new entry. The tick finds the due enrollments among a program's active ones, through the partial
  unique index `ux_program_enrollments_active` (program, account_id WHERE status = 'active'; SQLite picks
  `ix_program_enrollments_outcomes`, which leads with program and status): a read proportional to the active
  enrollments, once per tick. On PostgreSQL the table keeps half of each page free (fillfactor 50), so a move fits
  on the row's page as a heap-only update, also when a whole page of enrollments moves in one tick (at 100,000 due,
  96 % of the moves; with fillfactor 80 the move took 3x the server CPU). Pages written before this revision get
  the room when the table is rewritten (VACUUM FULL or CLUSTER).
- The foreign key `program_events.account_id -> accounts.id` is dropped: an event's account is its enrollment's,
  and `program_events.enrollment_id -> program_enrollments.id` (ON DELETE CASCADE, as enrollments cascade from
  accounts) already removes an account's events with it. On PostgreSQL each foreign key is a trigger run per row.

No row is changed: the events table keeps its rows (on SQLite it is rebuilt without the constraint).
"""

from alembic import op

revision = "0019_tick"
down_revision = "0018"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no name: a naming convention gives the reflected one a name the batch can drop.
NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
EVENTS_ACCOUNT_FK = "fk_program_events_account_id_accounts"
POSTGRES_EVENTS_ACCOUNT_FK = "program_events_account_id_fkey"


def upgrade() -> None:
    op.drop_index("ix_program_enrollments_due", table_name="program_enrollments")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(POSTGRES_EVENTS_ACCOUNT_FK, "program_events", type_="foreignkey")
        op.execute("ALTER TABLE program_enrollments SET (fillfactor = 50)")
        return
    with op.batch_alter_table("program_events", naming_convention=NAMES) as batch_op:
        batch_op.drop_constraint(EVENTS_ACCOUNT_FK, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE program_enrollments RESET (fillfactor)")
        op.create_foreign_key(POSTGRES_EVENTS_ACCOUNT_FK, "program_events", "accounts", ["account_id"], ["id"],
                              ondelete="CASCADE")  # fmt: skip
    else:
        with op.batch_alter_table("program_events", naming_convention=NAMES) as batch_op:
            batch_op.create_foreign_key(EVENTS_ACCOUNT_FK, "accounts", ["account_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_program_enrollments_due", "program_enrollments", ["status", "next_due_at"])
