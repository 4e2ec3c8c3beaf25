"""program tick speed: a history event is unique per enrollment and key, one index instead of two

Revision ID: 0020_tick
Revises: 0019_tick
Create Date: 2026-12-05 01:45:00

An event's dedupe key held its enrollment's id (`step:<id>:<step>`, `entered:<id>`, `exited:<reason>:<id>`,
`escalated:tier<n>:<id>`) under a unique index of its own, beside a second index on `enrollment_id`. Every step a
tick decides writes an event, so each of those index entries is paid per row (100,000 at a time). Now the key is
the part within the enrollment (`step:<step>`, `entered`, `exited:<reason>`, `escalated:tier<n>`) and the unique
index `ux_program_events_once` is (enrollment_id, dedupe_key): the same once-per-enrollment-and-step guarantee, and
the index the enrollment's history is read by (cards, cascade deletes), so `ix_program_events_enrollment` goes.

Existing keys are rewritten in place (the enrollment id taken out; a key of another form, written by hand, is kept
as it is, still unique within its enrollment); the downgrade puts the id back. No event is added or removed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_tick"
down_revision = "0019_tick"
branch_labels = None
depends_on = None

# SQLite's unique constraint has no name: a naming convention gives the reflected one a name the batch can drop.
NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SQLITE_UNIQUE = "uq_program_events_dedupe_key"
POSTGRES_UNIQUE = "program_events_dedupe_key_key"

# The id out of the key: `step:<id>:<step>` -> `step:<step>`, `<kind>[:<tag>]:<id>` -> `<kind>[:<tag>]`.
STRIP_ID = [
    "UPDATE program_events SET dedupe_key = substr(dedupe_key, 1, length(dedupe_key) - length(':' || enrollment_id))"
    " WHERE dedupe_key NOT LIKE 'step:%' AND dedupe_key LIKE ('%:' || enrollment_id)",
    "UPDATE program_events SET dedupe_key = 'step:' || substr(dedupe_key, length('step:' || enrollment_id || ':') + 1)"
    " WHERE dedupe_key LIKE ('step:' || enrollment_id || ':%')",
]
# And back in: only the keys that do not hold it already.
ADD_ID = [
    "UPDATE program_events SET dedupe_key = 'step:' || enrollment_id || ':' || substr(dedupe_key, 6)"
    " WHERE dedupe_key LIKE 'step:%' AND dedupe_key NOT LIKE ('step:' || enrollment_id || ':%')",
    "UPDATE program_events SET dedupe_key = dedupe_key || ':' || enrollment_id"
    " WHERE dedupe_key NOT LIKE 'step:%' AND dedupe_key NOT LIKE ('%:' || enrollment_id)",
]


def upgrade() -> None:
    op.drop_index("ix_program_events_enrollment", table_name="program_events")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(POSTGRES_UNIQUE, "program_events", type_="unique")
    else:
        with op.batch_alter_table("program_events", naming_convention=NAMES) as batch_op:
            batch_op.drop_constraint(SQLITE_UNIQUE, type_="unique")
    for statement in STRIP_ID:
        op.execute(sa.text(statement))
    op.create_index("ux_program_events_once", "program_events", ["enrollment_id", "dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_program_events_once", table_name="program_events")
    for statement in ADD_ID:
        op.execute(sa.text(statement))
    if op.get_bind().dialect.name == "postgresql":
        op.create_unique_constraint(POSTGRES_UNIQUE, "program_events", ["dedupe_key"])
    else:
        with op.batch_alter_table("program_events", naming_convention=NAMES) as batch_op:
            batch_op.create_unique_constraint(SQLITE_UNIQUE, ["dedupe_key"])
    op.create_index("ix_program_events_enrollment", "program_events", ["enrollment_id"])
