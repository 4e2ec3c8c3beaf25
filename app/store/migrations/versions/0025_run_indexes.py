"""scoring speed: two indexes a scoring run fed on every score row and nobody read dropped or narrowed

Revision ID: 0025_run_indexes
Revises: 0024_account_rows
Create Date: 2026-12-05 13:00:00

Every score row a run writes goes into each index of `scores`, and every account whose score moved into each of
`current_scores`: a million entries a run at a million accounts, each at a random place of a big index when its
key starts with a score (~4 us of server CPU an entry where the index has outgrown the buffer cache).

- `ix_current_scores_band_health` (band, health) is dropped. The accounts list sorted by health walks
  `ix_current_scores_health`; with a band filter too it walks the same index (a band is a range of health, unless
  a CSM overrode it) and skips the other bands' rows. Every other read of the table by band reads all its rows.
- `ix_scores_as_of_band` (as_of, band, health) becomes `ix_scores_as_of` (as_of). Nothing reads the score history
  by band and health any more (the book of a day comes from `current_scores` and `book_days`); what reads it by
  day (is there a score on or before a day, the history searched up to a past day) needs the day alone, and a
  run's rows, all of one day, then go to the end of the index (PostgreSQL keeps equal keys in heap order and
  deduplicates them).

Measured on a million-account first run (docs/scale.md): 58.1 s before, 52.6-54.0 s after; server CPU 63.9 ->
55.6-57.6 s. No row is changed; the index is built in seconds at a million accounts, up and down.
"""

from alembic import op

revision = "0025_run_indexes"
down_revision = "0024_account_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_current_scores_band_health", "current_scores")
    op.drop_index("ix_scores_as_of_band", "scores")
    op.create_index("ix_scores_as_of", "scores", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_scores_as_of", "scores")
    op.create_index("ix_scores_as_of_band", "scores", ["as_of", "band", "health"])
    op.create_index("ix_current_scores_band_health", "current_scores", ["band", "health"])
