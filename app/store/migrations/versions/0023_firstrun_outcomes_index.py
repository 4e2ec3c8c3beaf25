"""first run speed: the program outcomes index keyed by what is grouped and filtered, the ARR sums included

Revision ID: 0023_firstrun
Revises: 0022_tick
Create Date: 2026-12-05 07:20:00

`ix_program_enrollments_outcomes` was keyed (program, status, exit_reason, holdout, entered_at, arr_at_entry,
arr_at_end). A book's first run enters ~2.7 million enrollments at a million accounts, all of a program with one
key up to `entered_at`, so the ARR at entry (random) placed each new entry at a random page of the program's part
of the index: at a million accounts the index (225 MB) outgrew the server's buffer cache and cost about as much
per entry as the other three indexes together (a million-account first run's entries replayed by COPY: 12.9 ->
9.6 us of server CPU each, the index 163 MB; docs/scale.md).

Now the key is (program, status, exit_reason, holdout, entered_at) and, on PostgreSQL, the two ARR columns are
INCLUDEd: entries of one key go in heap order, at the end of their key's run (a page in cache), and the index still
covers the dashboard's grouped sums (app/web/program_outcomes) and serves its per-program listings as before. SQLite
has no INCLUDE: its index is the five key columns (the dashboard's sums read the table's rows there).

No row is changed; the index is rebuilt (seconds at a million accounts), up and down.
"""

from alembic import op

revision = "0023_firstrun"
down_revision = "0022_tick"
branch_labels = None
depends_on = None

NAME, TABLE = "ix_program_enrollments_outcomes", "program_enrollments"
KEY = ["program", "status", "exit_reason", "holdout", "entered_at"]
SUMS = ["arr_at_entry", "arr_at_end"]


def upgrade() -> None:
    op.drop_index(NAME, TABLE)
    op.create_index(NAME, TABLE, KEY, postgresql_include=SUMS)


def downgrade() -> None:
    op.drop_index(NAME, TABLE)
    op.create_index(NAME, TABLE, KEY + SUMS)
