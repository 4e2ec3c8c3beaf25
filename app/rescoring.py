"""A rescoring run: scores, the field writes they cause and the program enrollments they start.

Committing scores and outbox rows together is what makes write-back durable: there is no moment at which a
score exists whose CRM write is not queued, or the other way round. The book is read and scored in chunks
(app.scoring_chunks), all inside one transaction; or, for a large book on PostgreSQL, in `parts` (contiguous id
ranges) scored side by side, each in a transaction of its own, like the shards of a sharded run (app.shards).

Why parts: a run's time is mostly the database writing its rows, and one connection is one backend on one core.
Each part holds every row of its accounts (scores, outbox rows, enrollments, milestones), so an account's score
and its write-back still commit together. A part that fails rolls back alone and the run fails; a part already
committed stays, and the next run of the day completes the rest, writing nothing twice: a score that did not move
gets no row, a field write only for a value that changed since the last one planned, an enrollment only for an
account with none active (the same guarantees that make a lost shard's retry safe).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from app.band_totals import BandTotals
from app.ml.artifacts import Artifact
from app.programs.definitions import ActiveProgram
from app.scoring_chunks import DEFAULT_CHUNK_ACCOUNTS, ChunkedRun, active_ids, score_in_chunks, shard_ranges
from app.store.book_days import record_book_day
from app.store.db import schema_xact_lock
from app.store.scope import AccountScope, IdRange
from app.writeback.outbox import release_due_actions
from engine.health_config import HealthConfig
from engine.learning.risk import HealthRiskCalibration

RUN_LOCK_KEY = 7_242_012  # pg_advisory_xact_lock key of a run in parts (the programs lock's is 7_242_011)
# Each part holds two connections (its writes and its read-ahead) and the coordinating transaction one: seven parts
# fill the 15 of the engine's pool (SQLAlchemy's default 5 plus an overflow of 10); an eighth would wait for one.
MAX_PARTS = 7


def plans_write_back(as_of: date, dry_run: bool = False, today: date | None = None) -> bool:
    """Whether a run for `as_of` may write to the CRMs or contact customers: only a real run for today.

    A past day would overwrite today's scores in the CRMs and a future one would message customers about a day
    that has not come; both only store their scores (a backfill, a forecast), like a dry run does.
    """
    return not dry_run and as_of == (today or date.today())


@dataclass
class RescoreResult:
    totals: BandTotals
    field_writes: int
    new_actions: int
    released: int

    @property
    def accounts(self) -> int:
        return self.totals.accounts


def rescore(
    engine: Engine,
    as_of: date,
    config: HealthConfig,
    score_step: float,
    account_ids: AccountScope = None,
    now: datetime | None = None,
    artifact: Artifact | None = None,
    chunk_size: int = DEFAULT_CHUNK_ACCOUNTS,
    write_back: bool = True,
    calibration: HealthRiskCalibration | None = None,
    programs: dict[str, ActiveProgram] | None = None,
    parts: int = 1,
) -> RescoreResult:
    """Score, store and (with `write_back`) plan the CRM writes, enter, exit or escalate the accounts in the
    programs and release the actions due to the outbox; see `plans_write_back`. `parts`: at most this many parts
    on PostgreSQL, each of at least `chunk_size` accounts (see the module docstring)."""

    def score(conn: Connection, scope: AccountScope, shard: bool = False) -> ChunkedRun:
        return score_in_chunks(conn, as_of, config, score_step, scope, artifact, chunk_size, calibration,
                               write_back=write_back, programs=programs, shard=shard)  # fmt: skip

    with engine.begin() as conn:
        ranges = _part_ranges(conn, as_of, account_ids, parts, chunk_size)
        run = _score_parts(engine, ranges, score) if len(ranges) > 1 else score(conn, account_ids)
        if run.totals.accounts:
            record_book_day(conn, as_of)
        if not run.totals.accounts or not write_back:
            return RescoreResult(run.totals, 0, 0, 0)
        released = release_due_actions(conn, now or datetime.combine(as_of, datetime.max.time()))
    return RescoreResult(run.totals, run.field_writes, run.new_actions, released)


def _part_ranges(conn: Connection, as_of: date, scope: AccountScope, parts: int, chunk_size: int) -> list[IdRange]:
    """The id ranges of a run in parts, or one range or none for a run in one transaction: SQLite (one writer),
    an explicit id list (a webhook's few accounts), or a book of fewer than two chunks (a part is at least one).

    A run in parts takes the run lock (`take_run_lock`) in this, the coordinating, transaction until it ends."""
    if parts < 2 or conn.dialect.name != "postgresql" or not (scope is None or isinstance(scope, IdRange)):
        return []
    ids = active_ids(conn, as_of, scope)
    count = min(parts, MAX_PARTS, len(ids) // max(chunk_size, 1))
    if count < 2:
        return []
    take_run_lock(conn)
    return shard_ranges(ids, count)


def take_run_lock(conn: Connection, shared: bool = False) -> None:
    """Until the transaction ends: exclusively for a run in parts, shared for a shard of a sharded run. Both kinds
    hold the programs lock shared among their own parts or shards (app/programs/tick.take_lock), which is safe only
    between disjoint id ranges: this keeps a run in parts apart from every other such run and from a sharded run's
    shards. Taken before the programs lock, by both."""
    schema_xact_lock(conn, RUN_LOCK_KEY, shared)


def _score_parts(engine: Engine, ranges: list[IdRange], score) -> ChunkedRun:
    """Score each range in a thread, on connections of its own, in a transaction of its own; the runs merged.
    Every part runs to its end (commit or rollback) before the first failure, if any, is raised."""

    def part(scope: IdRange) -> ChunkedRun:
        with engine.begin() as conn:
            return score(conn, scope, shard=True)

    with ThreadPoolExecutor(len(ranges), thread_name_prefix="score-part") as pool:
        futures = [pool.submit(part, scope) for scope in ranges]
    run = ChunkedRun()
    for future in futures:
        run.merge(future.result())
    return run
