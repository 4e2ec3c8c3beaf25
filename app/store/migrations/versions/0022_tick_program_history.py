"""program tick speed: a sent step and an entry are read from the action and the enrollment, not stored twice

Revision ID: 0022_tick
Revises: 0021_demo
Create Date: 2026-12-05 04:30:00

Every step a tick sends wrote an action (its dedupe key, account, channel, step, time) and a `step_sent` history
event repeating it; every entry wrote an enrollment (its `entered_at`) and an `entered` event repeating that. Each
event was a row, two index entries and a foreign key check: ~0.9 s of PostgreSQL CPU per 100,000 steps sent. Now a
program step's action carries its enrollment and problem (`actions.enrollment_id`, `actions.problem`, no index) and
the view `program_history` gives the whole history: the stored events, a `step_sent` row per such action and an
`entered` row per enrollment that entered. Readers read the view.

Existing rows: the actions of program steps get their enrollment and problem from their `step_sent` event, then the
events the view now derives are deleted (a `step_sent` event whose action exists, an `entered` event of an
enrollment that entered), so nothing is listed twice. The downgrade writes them back from the actions and
enrollments.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_tick"
down_revision = "0021_demo"
branch_labels = None
depends_on = None

# Every branch gives each column the same type (on PostgreSQL the three account ids are integer, the ids bigint), so
# PostgreSQL pushes a reader's predicates (account, kind, time, enrollment) into each branch and its indexes; a
# branch whose kind cannot match is left out.
VIEW = """CREATE VIEW program_history AS
SELECT id, enrollment_id, account_id, program, kind, step, channel, problem, at, dedupe_key
FROM program_events
UNION ALL
SELECT id, enrollment_id, account_id, playbook, 'step_sent', step, kind, problem, created_at,
       CAST('step:' || step AS VARCHAR(128))
FROM actions WHERE enrollment_id IS NOT NULL
UNION ALL
SELECT id, id, account_id, program, 'entered', NULL, NULL, NULL, entered_at, 'entered'
FROM program_enrollments WHERE entered_at IS NOT NULL"""

ACTION_KEY = "'program:' || program_events.enrollment_id || ':' || program_events.step"
FROM_EVENTS = f"""UPDATE actions SET enrollment_id = program_events.enrollment_id, problem = program_events.problem
FROM program_events WHERE program_events.kind = 'step_sent' AND actions.dedupe_key = {ACTION_KEY}"""
DERIVED = [
    f"""DELETE FROM program_events WHERE kind = 'step_sent'
    AND EXISTS (SELECT 1 FROM actions WHERE actions.dedupe_key = {ACTION_KEY})""",
    """DELETE FROM program_events WHERE kind = 'entered' AND dedupe_key = 'entered'
    AND EXISTS (SELECT 1 FROM program_enrollments e WHERE e.id = program_events.enrollment_id
                AND e.entered_at IS NOT NULL)""",
]
STORED = [
    """INSERT INTO program_events (enrollment_id, account_id, program, kind, at, dedupe_key)
    SELECT id, account_id, program, 'entered', entered_at, 'entered' FROM program_enrollments e
    WHERE entered_at IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM program_events WHERE enrollment_id = e.id AND dedupe_key = 'entered')""",
    """INSERT INTO program_events (enrollment_id, account_id, program, kind, step, channel, problem, at, dedupe_key)
    SELECT a.enrollment_id, a.account_id, a.playbook, 'step_sent', a.step, a.kind, a.problem, a.created_at,
           'step:' || a.step
    FROM actions a JOIN program_enrollments e ON e.id = a.enrollment_id
    WHERE NOT EXISTS (
        SELECT 1 FROM program_events WHERE enrollment_id = a.enrollment_id AND dedupe_key = 'step:' || a.step)""",
]


def upgrade() -> None:
    op.add_column("actions", sa.Column("enrollment_id", sa.BigInteger(), nullable=True))
    op.add_column("actions", sa.Column("problem", sa.String(48), nullable=True))
    op.execute(sa.text(FROM_EVENTS))
    for statement in DERIVED:
        op.execute(sa.text(statement))
    op.execute(sa.text(VIEW))


def downgrade() -> None:
    op.execute(sa.text("DROP VIEW program_history"))
    for statement in STORED:
        op.execute(sa.text(statement))
    with op.batch_alter_table("actions") as batch_op:
        batch_op.drop_column("problem")
        batch_op.drop_column("enrollment_id")
