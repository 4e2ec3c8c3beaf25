"""Sharded scoring over RQ workers: the way a book grows past one machine (PostgreSQL and Redis shared by all).

`start_run` cuts the active accounts into N contiguous id ranges, records a run and one row per shard, and
enqueues one job per shard on the score queue; any `cse worker` on any machine runs them. A shard job scores its
range in chunks (app.scoring_chunks) in one transaction that also marks the shard `done` with its band totals, so
a shard's scores and outbox rows are committed together with its completion or not at all.

* **Lost shards are retried, never double-counted.** While a job scores, it holds its shard row locked
  (SELECT … FOR UPDATE); a worker killed mid-shard loses its connection, the database rolls its writes back and
  the lock goes. `recover_lost_shards` finds `running` rows nobody holds (SKIP LOCKED) and queued rows whose RQ
  job is gone, and enqueues them again. A second job for a shard that is still running waits on the lock and
  then finds it `done`.
* **The coordinator runs exactly once.** Every shard job, and the waiting `cse score --shards`, tries to complete
  the run with a conditional UPDATE (status `scoring` → `done` only while no shard is unfinished) in the same
  transaction as the completion work (band summary from the shards' totals, due actions released): one
  transaction wins, the others update no row. Write-back is dispatched after that commit (dispatching is
  idempotent; the scheduler's periodic dispatch covers a crash in between).
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, select, update

from app.band_totals import BandTotals
from app.ml.auto import scoring_calibration
from app.ml.scorer import load_scoring_artifact
from app.programs.definitions import load_programs
from app.queues import SCORE_QUEUE, get_queue, job_alive, redis_connection
from app.rescoring import take_run_lock
from app.scoring_chunks import active_ids, score_in_chunks, shard_ranges
from app.settings import Settings
from app.store.book_days import record_book_day
from app.store.models import ScoreRun, ScoreShard
from app.store.scope import IdRange
from app.writeback.outbox import release_due_actions
from engine.health_config import load_health_config

MAX_ATTEMPTS = 3
# A `running` shard is only judged lost after this long: the moment between marking it and locking it.
RUNNING_GRACE = timedelta(seconds=5)
SHARD_JOB_TIMEOUT = 6 * 3600


class ShardingRefused(ValueError):
    """Sharding needs PostgreSQL (row locks, many writers) and Redis (the queue the workers share)."""


def check_shardable(settings: Settings) -> None:
    if settings.uses_sqlite:
        raise ShardingRefused(
            "--shards needs PostgreSQL (DATABASE_URL=postgresql://…): SQLite is one file on one machine and "
            "runs unsharded; drop --shards"
        )
    if not settings.redis_url:
        raise ShardingRefused("--shards needs REDIS_URL: the shards are RQ jobs that `cse worker` processes run")


def _enqueue(settings: Settings, run_id: str, shard: int, attempt: int, connection=None) -> str:
    job_id = f"cse-score-{run_id}-{shard}-{attempt}"
    get_queue(settings, SCORE_QUEUE, connection).enqueue(
        score_shard_job, run_id, shard, job_id=job_id, job_timeout=SHARD_JOB_TIMEOUT
    )
    return job_id


def start_run(engine: Engine, settings: Settings, as_of: date, shards: int, connection=None) -> str:
    """Record a run of `shards` shards over the accounts active on `as_of` and enqueue their jobs."""
    check_shardable(settings)
    run_id = uuid.uuid4().hex
    now = datetime.now()
    with engine.begin() as conn:
        ranges = shard_ranges(active_ids(conn, as_of), shards)
        conn.execute(ScoreRun.__table__.insert().values(id=run_id, as_of=as_of, status="scoring",
                                                        shards=len(ranges), created_at=now))  # fmt: skip
        if ranges:
            conn.execute(ScoreShard.__table__.insert(), [
                {"run_id": run_id, "shard": i, "first_id": r.first, "last_id": r.last, "status": "queued",
                 "attempts": 0, "field_writes": 0, "new_actions": 0, "updated_at": now}
                for i, r in enumerate(ranges)
            ])  # fmt: skip
    for shard in range(len(ranges)):
        job_id = _enqueue(settings, run_id, shard, 1, connection)
        with engine.begin() as conn:
            conn.execute(update(ScoreShard).where(_shard(run_id, shard)).values(job_id=job_id))
    if not ranges:
        complete_run(engine, settings, run_id)
    return run_id


def _shard(run_id: str, shard: int):
    return and_(ScoreShard.run_id == run_id, ScoreShard.shard == shard)


def score_shard_job(run_id: str, shard: int) -> int:
    """Score one shard (an RQ job): its scores, outbox rows, actions and `done` commit together."""
    settings = Settings.from_env()
    from app.writeback.jobs import _engine

    engine = _engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            update(ScoreShard)
            .where(_shard(run_id, shard), ScoreShard.status.in_(("queued", "running")))
            .values(status="running", attempts=ScoreShard.attempts + 1, updated_at=datetime.now())
        )
    programs = load_programs(settings, engine)
    with engine.begin() as conn:
        row = conn.execute(select(ScoreShard).where(_shard(run_id, shard)).with_for_update()).one()
        if row.status != "running":  # done by an earlier attempt that was only slow, or given up
            return 0
        as_of = conn.scalar(select(ScoreRun.as_of).where(ScoreRun.id == run_id))
        take_run_lock(conn, shared=True)
        run = score_in_chunks(
            conn, as_of, load_health_config(settings.health_config), settings.writeback_score_step,
            IdRange(row.first_id, row.last_id), load_scoring_artifact(settings.data_dir),
            settings.score_chunk_accounts, scoring_calibration(settings.data_dir, settings.churn_horizon_days),
            programs=programs, shard=True,
        )  # fmt: skip
        conn.execute(
            update(ScoreShard)
            .where(_shard(run_id, shard))
            .values(
                status="done",
                totals=run.totals.to_json(),
                field_writes=run.field_writes,
                new_actions=run.new_actions,
                updated_at=datetime.now(),
            )  # fmt: skip
        )
    complete_run(engine, settings, run_id)
    return run.totals.accounts


def complete_run(engine: Engine, settings: Settings, run_id: str) -> bool:
    """Complete the run if every shard is done and nobody has yet; True for the one caller that did."""
    unfinished = exists().where(ScoreShard.run_id == run_id, ScoreShard.status != "done")
    with engine.begin() as conn:
        claimed = conn.execute(
            update(ScoreRun)
            .where(ScoreRun.id == run_id, ScoreRun.status == "scoring", ~unfinished)
            .values(status="done", finished_at=datetime.now()),
            execution_options={"preserve_rowcount": True},
        ).rowcount
        if claimed != 1:
            return False
        as_of = conn.scalar(select(ScoreRun.as_of).where(ScoreRun.id == run_id))
        shards = conn.execute(select(ScoreShard).where(ScoreShard.run_id == run_id)).all()
        summary = _merged_totals(shards).summary()
        record_book_day(conn, as_of)
        released = release_due_actions(conn, datetime.combine(as_of, datetime.max.time()))
        summary["writeback"] = {"field_writes": sum(s.field_writes for s in shards),
                                "new_actions": sum(s.new_actions for s in shards), "released": released}  # fmt: skip
        conn.execute(update(ScoreRun).where(ScoreRun.id == run_id).values(summary=summary))
    from app.writeback.jobs import enqueue_deliveries

    enqueue_deliveries(settings, engine, connection=redis_connection(settings) if settings.redis_url else None)
    return True


def _merged_totals(shards) -> BandTotals:
    totals = BandTotals()
    for shard in shards:
        totals.merge(BandTotals.from_json(shard.totals))
    return totals


def run_totals(engine: Engine, run_id: str) -> BandTotals:
    """The run's totals, its shards' added up: what the risk summary counts (accounts with a churn probability,
    drivers, a risk) alongside the models the coordinator knows and the shards do not report."""
    with engine.connect() as conn:
        return _merged_totals(conn.execute(select(ScoreShard.totals).where(ScoreShard.run_id == run_id)).all())


def recover_lost_shards(engine: Engine, settings: Settings, run_id: str, connection=None) -> int:
    """Enqueue again the shards whose job was lost (killed worker, restarted Redis); returns how many."""
    now = datetime.now()
    lost = []
    with engine.begin() as conn:
        running = conn.execute(
            select(ScoreShard.shard, ScoreShard.attempts)
            .where(ScoreShard.run_id == run_id, ScoreShard.status == "running",
                   ScoreShard.updated_at <= now - RUNNING_GRACE)
            .with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        lost += running
        queued = conn.execute(
            select(ScoreShard.shard, ScoreShard.attempts, ScoreShard.job_id)
            .where(ScoreShard.run_id == run_id, ScoreShard.status == "queued")
            .with_for_update(skip_locked=True)
        ).all()
        lost += [(shard, attempts) for shard, attempts, job_id in queued
                 if not (job_id and job_alive(settings, job_id, connection))]  # fmt: skip
        for shard, attempts in lost:
            if attempts >= MAX_ATTEMPTS:
                conn.execute(update(ScoreShard).where(_shard(run_id, shard)).values(status="failed", updated_at=now))
                conn.execute(update(ScoreRun).where(ScoreRun.id == run_id).values(status="failed", finished_at=now))
                continue
            job_id = _enqueue(settings, run_id, shard, attempts + 1, connection)
            conn.execute(
                update(ScoreShard).where(_shard(run_id, shard)).values(status="queued", job_id=job_id, updated_at=now)
            )
    return len(lost)


def wait_for_run(
    engine: Engine, settings: Settings, run_id: str, poll_seconds: float = 1.0, timeout: float | None = None
) -> dict[str, Any]:
    """Wait until the run is done (recovering lost shards meanwhile); returns its summary."""
    connection = redis_connection(settings)
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        with engine.connect() as conn:
            status, summary = conn.execute(select(ScoreRun.status, ScoreRun.summary).where(ScoreRun.id == run_id)).one()
        if status == "done":
            return summary
        if status == "failed":
            raise RuntimeError(f"scoring run {run_id} failed: a shard failed {MAX_ATTEMPTS} times (see the worker log)")
        recover_lost_shards(engine, settings, run_id, connection)
        complete_run(engine, settings, run_id)
        time.sleep(poll_seconds)
    raise TimeoutError(f"scoring run {run_id} not done after {timeout} s")
