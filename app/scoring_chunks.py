"""A scoring run streamed over the book in account chunks, so memory is bounded by the chunk, not the book.

Every score is a function of one account's own rollups, history and attributes (the engine has no cross-account
step; the churn model's percentiles are against its validation set, fixed at training), so scoring chunk by chunk
gives the same scores as scoring the book at once. What the run reports about the whole book, the counts and
averages by band, is added up chunk by chunk (app.band_totals). Each chunk's scores, the field writes they cause
and the program enrollments they start are written in the caller's transaction before the next chunk is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from app.band_totals import BandTotals
from app.cards.overrides import apply_band_overrides
from app.ml.artifacts import Artifact
from app.programs.definitions import ActiveProgram
from app.programs.milestones import record_milestones
from app.programs.tick import enroll
from app.scoring import compute_scores, write_scores
from app.store.bulk import fetch_int_columns
from app.store.metrics import accounts_active_on
from app.store.models import Account
from app.store.scope import AccountScope, IdRange, scope_filter
from app.writeback.outbox import plan_field_writes
from engine.health_config import HealthConfig
from engine.learning.risk import HealthRiskCalibration

# Accounts read, scored and written per chunk (CSE_SCORE_CHUNK_ACCOUNTS): a few hundred MB at most (~580 MiB peak
# in a million-account run, where 50,000 took 0.9x the client CPU and wall time of 25,000, and 100,000 no less).
DEFAULT_CHUNK_ACCOUNTS = 50_000


def active_ids(conn: Connection, as_of: date, scope: AccountScope = None) -> np.ndarray:
    """Ids of the accounts active on `as_of` within the scope, ascending."""
    query = select(Account.id).where(accounts_active_on(as_of), scope_filter(Account.id, scope)).order_by(Account.id)
    (ids,) = fetch_int_columns(conn, query)
    return ids


def split_ids(ids: np.ndarray, size: int) -> list[IdRange]:
    """Consecutive id ranges of at most `size` of the given (ascending) ids each."""
    size = max(int(size), 1)
    return [IdRange(int(ids[i]), int(ids[min(i + size, len(ids)) - 1])) for i in range(0, len(ids), size)]


def shard_ranges(ids: np.ndarray, shards: int) -> list[IdRange]:
    """`shards` contiguous id ranges holding (nearly) equal numbers of the given ascending ids; none empty."""
    return [IdRange(int(part[0]), int(part[-1])) for part in np.array_split(ids, shards) if len(part)]


def chunks(conn: Connection, as_of: date, size: int, scope: AccountScope = None) -> Iterator[AccountScope]:
    """The scope cut into chunks of at most `size` active accounts: id ranges, or slices of an explicit id list."""
    if scope is None or isinstance(scope, IdRange):
        yield from split_ids(active_ids(conn, as_of, scope), size)
        return
    ids = sorted(set(scope))
    for start in range(0, len(ids), max(int(size), 1)):
        yield ids[start : start + size]


def plan_for_chunks(conn: Connection) -> None:
    """On PostgreSQL, for the scoring transaction only: no JIT, and random_page_cost 1.1.

    JIT compiles every chunk's queries anew (~0.3 s a query, as long as a chunk's query runs); and a chunk's
    rollups are one key range of their primary key, in cache, which the default random_page_cost of 4 prices
    so high that the planner scans and sorts the whole rollup table once per chunk instead.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")


def _scored_chunks(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    chunk_size: int,
    scope: AccountScope,
    artifact: Artifact | None,
    calibration: HealthRiskCalibration | None,
) -> Iterator[tuple[AccountScope, pd.DataFrame]]:
    """Each chunk of the scope with its scores, computed but not stored.

    On PostgreSQL the next chunk is read and scored on a second connection, in a thread, while the caller writes
    this one's: the chunk's metrics query and the frames built from it overlap the writes (the database and the
    client each have a core to themselves part of the time). What scoring reads (rollups, accounts, history up to
    the day before, overrides) is committed before a run starts and not written by it, so the second connection
    reads what the run's own would.
    """

    def scored(reader: Connection, chunk: AccountScope) -> pd.DataFrame:
        return apply_band_overrides(reader, compute_scores(reader, as_of, config, chunk, artifact, calibration), as_of)

    ranges = list(chunks(conn, as_of, chunk_size, scope))
    if conn.dialect.name != "postgresql" or len(ranges) < 2:
        yield from ((chunk, scored(conn, chunk)) for chunk in ranges)
        return
    with conn.engine.connect() as reader, ThreadPoolExecutor(max_workers=1) as ahead:
        plan_for_chunks(reader)
        # Serial plans: the reads run beside the writes, which keep a core busy already, and a parallel plan
        # costs more CPU in all (workers started per query, partial aggregates merged) than it saves here.
        reader.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        pending = ahead.submit(scored, reader, ranges[0])
        for following, chunk in enumerate(ranges, start=1):
            frame = pending.result()
            if following < len(ranges):
                pending = ahead.submit(scored, reader, ranges[following])
            yield chunk, frame


@dataclass
class ChunkedRun:
    totals: BandTotals = field(default_factory=BandTotals)
    field_writes: int = 0
    new_actions: int = 0  # program enrollments started (their steps become actions at the scheduler's ticks)

    def merge(self, other: ChunkedRun) -> None:
        self.totals.merge(other.totals)
        self.field_writes += other.field_writes
        self.new_actions += other.new_actions


def score_in_chunks(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    score_step: float,
    scope: AccountScope = None,
    artifact: Artifact | None = None,
    chunk_size: int = DEFAULT_CHUNK_ACCOUNTS,
    calibration: HealthRiskCalibration | None = None,
    write_back: bool = True,
    programs: dict[str, ActiveProgram] | None = None,
    shard: bool = False,
) -> ChunkedRun:
    """Score, store and plan write-back for every active account in `scope`, one chunk at a time; with
    `programs`, each chunk's accounts also enter, leave or escalate in them (app/programs/tick.enroll).

    `write_back=False` (a backfill, a dry run) stores the scores but plans no CRM write, no customer contact and
    no program step. `shard`: `scope` is one of several disjoint id ranges scored side by side (a shard of a
    sharded run, a part of a one-process run: app.rescoring), whose program entries hold the programs lock shared
    with the others' (app/programs/tick.take_lock).
    """
    run = ChunkedRun()
    plan_for_chunks(conn)
    entered_at = datetime.combine(as_of, datetime.now().time())
    for chunk, scored in _scored_chunks(conn, as_of, config, chunk_size, scope, artifact, calibration):
        write_scores(conn, as_of, scored, chunk)
        if scored.empty:
            continue
        if write_back:
            run.field_writes += plan_field_writes(conn, scored, as_of, score_step)
            if programs:
                counts = enroll(conn, programs, scored, entered_at, shard=shard)
                run.new_actions += sum(c["entered"] + c["requests"] for c in counts.values())
                record_milestones(conn, scored, as_of)
        run.totals.add(scored)
    return run
