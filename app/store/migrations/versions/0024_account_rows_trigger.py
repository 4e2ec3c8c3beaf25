"""first run speed: an account's scores, current score, enrollments and milestones go with it by a trigger, not
by a foreign key checked on every row written

Revision ID: 0024_account_rows
Revises: 0023_firstrun
Create Date: 2026-12-05 12:30:00

A scoring run writes a score row and a current score per account whose score moved, and a book's first run enters
~2.7 enrollments and ~0.7 milestones per account on top: 5.3 million rows at a million accounts. On PostgreSQL
each row's foreign key to `accounts` is a trigger that looks the account up and locks it (FOR KEY SHARE), ~4 us of
server CPU a row: a million-account first run took 66-69 s with them and 58-59 s without (server CPU 86-89 s ->
67-70 s; docs/scale.md). The keys guarded against rows of an account that does not exist, which these tables only
ever get from the account rows the run itself has just read: the product never deletes an account (a churned one
keeps its row and its history).

What the keys also did, ON DELETE CASCADE, is kept: a trigger on `accounts` deletes the four tables' rows of the
accounts deleted (on PostgreSQL once per statement, over the deleted rows as a set), and the enrollments' events
still go with their enrollment by their own key. The other tables that reference `accounts` keep their keys: they
are written a few rows at a time.

No row is changed. On SQLite the four tables are rebuilt without the key (`legacy_alter_table` keeps SQLite from
rewriting the view `program_history`, which reads the enrollments by name, while a table is renamed).
"""

from alembic import op

revision = "0024_account_rows"
down_revision = "0023_firstrun"
branch_labels = None
depends_on = None

TABLES = ("scores", "current_scores", "program_enrollments", "program_milestones")
# SQLite's foreign keys have no name: a naming convention gives the reflected one a name the batch can drop.
NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
TRIGGER = "accounts_delete_rows"
FUNCTION = "cse_delete_account_rows"


def _postgres_function() -> str:
    deletes = "\n".join(f"  DELETE FROM {table} WHERE account_id IN (SELECT id FROM gone);" for table in TABLES)
    body = f"BEGIN\n{deletes}\n  RETURN NULL;\nEND"
    return f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n{body}\n$$"


def _sqlite_trigger() -> str:
    deletes = "\n".join(f"  DELETE FROM {table} WHERE account_id = OLD.id;" for table in TABLES)
    return f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON accounts FOR EACH ROW BEGIN\n{deletes}\nEND"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.drop_constraint(f"{table}_account_id_fkey", table, type_="foreignkey")
        op.execute(_postgres_function())
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON accounts REFERENCING OLD TABLE AS gone "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()")  # fmt: skip
        return
    op.execute("PRAGMA legacy_alter_table=ON")
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_account_id_accounts", type_="foreignkey")
    op.execute("PRAGMA legacy_alter_table=OFF")
    op.execute(_sqlite_trigger())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TRIGGER} ON accounts")
        op.execute(f"DROP FUNCTION {FUNCTION}()")
        for table in TABLES:
            op.create_foreign_key(f"{table}_account_id_fkey", table, "accounts", ["account_id"], ["id"],
                                  ondelete="CASCADE")  # fmt: skip
        return
    op.execute(f"DROP TRIGGER {TRIGGER}")
    op.execute("PRAGMA legacy_alter_table=ON")
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.create_foreign_key(f"fk_{table}_account_id_accounts", "accounts", ["account_id"], ["id"],
                                        ondelete="CASCADE")  # fmt: skip
    op.execute("PRAGMA legacy_alter_table=OFF")
