"""program tick speed: delete triggers in place of the foreign keys of actions, outbox rows and program events

Revision ID: 0020_tick2
Revises: 0019_tick
Create Date: 2026-12-05 00:30:00

A program tick that sends 100,000 steps writes 100,000 actions, outbox rows and history events. On PostgreSQL each
foreign key is a check per row written (a key-share lock of the parent row: ~40 % of such an insert's time), and
these three keys only ever served to remove the rows with their parent: every writer takes the id from the parent
row it reads. So the keys `actions.account_id -> accounts.id`, `outbox.account_id -> accounts.id` and
`program_events.enrollment_id -> program_enrollments.id` (all ON DELETE CASCADE) are dropped, and delete triggers
remove the rows instead: on accounts (its actions and outbox rows) and on program_enrollments (their events; an
enrollment is still removed with its account by its own foreign key, which fires the trigger). PostgreSQL runs them
once per statement over the deleted rows; SQLite once per deleted row.

No row is changed (on SQLite the three tables are rebuilt without the constraint).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_tick2"
down_revision = "0019_tick"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no name: a naming convention gives the reflected one a name the batch can drop.
NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = [("actions", "account_id", "accounts"), ("outbox", "account_id", "accounts"),
        ("program_events", "enrollment_id", "program_enrollments")]  # fmt: skip
PLANNED = sa.text("status = 'planned'")

POSTGRES_UP = [
    """CREATE FUNCTION cse_remove_account_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM actions WHERE account_id IN (SELECT id FROM gone);
        DELETE FROM outbox WHERE account_id IN (SELECT id FROM gone);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER accounts_remove_rows AFTER DELETE ON accounts REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION cse_remove_account_rows()""",
    """CREATE FUNCTION cse_remove_enrollment_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM program_events WHERE enrollment_id IN (SELECT id FROM gone);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER program_enrollments_remove_events AFTER DELETE ON program_enrollments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION cse_remove_enrollment_events()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER program_enrollments_remove_events ON program_enrollments",
    "DROP FUNCTION cse_remove_enrollment_events()",
    "DROP TRIGGER accounts_remove_rows ON accounts",
    "DROP FUNCTION cse_remove_account_rows()",
]
SQLITE_UP = [
    """CREATE TRIGGER accounts_remove_rows AFTER DELETE ON accounts BEGIN
        DELETE FROM actions WHERE account_id = OLD.id;
        DELETE FROM outbox WHERE account_id = OLD.id;
    END""",
    """CREATE TRIGGER program_enrollments_remove_events AFTER DELETE ON program_enrollments BEGIN
        DELETE FROM program_events WHERE enrollment_id = OLD.id;
    END""",
]
SQLITE_DOWN = ["DROP TRIGGER program_enrollments_remove_events", "DROP TRIGGER accounts_remove_rows"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, _ in KEYS:
            op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")
        for statement in POSTGRES_UP:
            op.execute(statement)
        return
    for table, column, parent in KEYS:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_{column}_{parent}", type_="foreignkey")
    _keep_planned_index_partial()
    for statement in SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
        for table, column, parent in KEYS:
            op.create_foreign_key(f"{table}_{column}_fkey", table, parent, [column], ["id"], ondelete="CASCADE")
        return
    for statement in SQLITE_DOWN:
        op.execute(statement)
    for table, column, parent in KEYS:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.create_foreign_key(f"fk_{table}_{column}_{parent}", parent, [column], ["id"], ondelete="CASCADE")
    _keep_planned_index_partial()


def _keep_planned_index_partial() -> None:
    """A batch rebuild recreates the indexes it reflects, and a reflected SQLite index may lose its WHERE clause:
    ix_actions_planned (0018) is made again as it was, partial."""
    op.drop_index("ix_actions_planned", table_name="actions")
    op.create_index("ix_actions_planned", "actions", ["kind", "due"], sqlite_where=PLANNED)
