"""Sharded scoring on PostgreSQL and real Redis with `cse worker` processes: the same scores, bands and outbox rows
as an unsharded run, and a worker killed mid-shard (SIGKILL) still completes the run exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import select

from app.band_totals import BandTotals
from app.programs.definitions import active_programs
from app.programs.tick import take_lock
from app.scoring_chunks import score_in_chunks
from app.settings import Settings
from app.shards import ShardingRefused, check_shardable, complete_run, run_totals, start_run, wait_for_run
from app.store.book_days import record_book_day
from app.store.models import ScoreRun, ScoreShard
from app.writeback.outbox import release_due_actions
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from tests.conftest import _drop_schema, _postgres_engine
from tests.scale_support import AS_OF, load_linked_book, programs_lock, run_outcome, wait_for_locks


@pytest.fixture
def postgres():
    engine, schema = _postgres_engine()
    try:
        from app.store.db import upgrade_schema

        upgrade_schema(engine)
        yield engine
    finally:
        engine.dispose()
        _drop_schema(schema)


@pytest.fixture
def sharding(postgres, throwaway_redis_url, tmp_path, monkeypatch):
    """The linked book in PostgreSQL, the unsharded run's outcome (rolled back), and the workers' environment."""
    load_linked_book(postgres)
    with postgres.connect() as conn, conn.begin() as transaction:
        run = score_in_chunks(conn, AS_OF, load_health_config(), 2.0,
                              programs=active_programs(None, DEFAULT_PROGRAMS_DIR))  # fmt: skip
        record_book_day(conn, AS_OF)  # what completing a run does
        release_due_actions(conn, datetime.combine(AS_OF, datetime.max.time()))
        expected = run_outcome(conn)
        transaction.rollback()
    env = {"DATABASE_URL": postgres.url.render_as_string(hide_password=False), "REDIS_URL": throwaway_redis_url,
           "CSE_DATA_DIR": str(tmp_path), "CSE_SCORE_CHUNK_ACCOUNTS": "1"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield postgres, {**os.environ, **env}, expected, run.totals


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", "worker", "score"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _assert_same_as_unsharded(store, expected: dict, expected_totals: BandTotals, summary: dict, run_id: str) -> None:
    with store.connect() as conn:
        got = run_outcome(conn)
    for name, frame in expected.items():
        columns = [c for c in frame.columns if not (name == "outbox" and c == "status")]  # dispatched since
        pd.testing.assert_frame_equal(got[name][columns], frame[columns], check_exact=True, obj=name)
    assert {k: summary[k] for k in ("accounts", "unscored", "bands")} == expected_totals.summary()
    totals = run_totals(store, run_id)  # what the sharded `cse score` summary's risk block counts
    assert (totals.accounts, totals.risk) == (expected_totals.accounts, expected_totals.risk)
    assert totals.risk["with_risk"] > 0


def _shards(store, run_id: str) -> list:
    with store.connect() as conn:
        return conn.execute(select(ScoreShard).where(ScoreShard.run_id == run_id).order_by(ScoreShard.shard)).all()


def test_sharded_run_matches_the_unsharded_one(sharding):
    """…with the two shards' program entries running at once: a tick (the test) holds the programs lock while the
    run starts, both shards queue for it, and its release lets both in together (seen in pg_locks)."""
    store, env, expected, expected_totals = sharding
    workers = [_worker(env), _worker(env)]
    try:
        with store.connect() as tick, store.connect() as observer:
            tick.begin()
            take_lock(tick)
            run_id = start_run(store, Settings.from_env(), AS_OF, 2)
            wait_for_locks(observer, lambda locks: [(m, g) for _, m, g in locks].count(("ShareLock", False)) == 2)
            tick.commit()
            together = programs_lock(observer)
        summary = wait_for_run(store, Settings.from_env(), run_id, poll_seconds=0.2, timeout=240)
    finally:
        _stop(workers)
    assert [(mode, granted) for _, mode, granted in together] == [("ShareLock", True)] * 2
    assert [(s.status, s.attempts) for s in _shards(store, run_id)] == [("done", 1), ("done", 1)]
    _assert_same_as_unsharded(store, expected, expected_totals, summary, run_id)


def test_a_worker_killed_mid_shard_is_retried_and_the_run_completes_once(sharding):
    store, env, expected, expected_totals = sharding
    settings = Settings.from_env()
    first = _worker(env)
    workers = [first]
    try:
        run_id = start_run(store, settings, AS_OF, 2)
        deadline = time.monotonic() + 120
        while not any(s.status == "running" for s in _shards(store, run_id)):
            assert time.monotonic() < deadline, "no shard started"
            time.sleep(0.02)
        time.sleep(0.3)  # well inside the shard's transaction (one account per chunk)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed = [s.shard for s in _shards(store, run_id) if s.status == "running"]
        assert killed, "the shard finished before the kill; the test did not exercise a lost shard"
        workers += [_worker(env), _worker(env)]
        summary = wait_for_run(store, settings, run_id, poll_seconds=0.2, timeout=240)
    finally:
        _stop(workers)
    shards = _shards(store, run_id)
    assert all(s.status == "done" for s in shards)
    assert all(shards[k].attempts == 2 for k in killed)
    _assert_same_as_unsharded(store, expected, expected_totals, summary, run_id)
    assert complete_run(store, settings, run_id) is False  # completed once; nobody completes it again
    with store.connect() as conn:
        assert conn.scalar(select(ScoreRun.summary).where(ScoreRun.id == run_id)) == summary


def test_sharding_is_refused_on_sqlite(tmp_path):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "REDIS_URL": "redis://x"})
    with pytest.raises(ShardingRefused, match="PostgreSQL"):
        check_shardable(settings)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": "redis://x"}
    command = [sys.executable, "-m", "app", "score", "--shards", "2"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "needs PostgreSQL" in done.stderr


def test_the_sharded_score_command_reports_the_risk_counts(sharding):
    """`cse score --shards N` (its body, for the fixture's day) adds the risk block the unsharded command prints."""
    from app.cli import _score_sharded

    store, env, expected, expected_totals = sharding
    workers = [_worker(env), _worker(env)]
    try:
        summary = _score_sharded(Settings.from_env(), store, AS_OF, 2)
    finally:
        _stop(workers)
    assert summary["risk"]["accounts"] == expected_totals.accounts
    assert {k: summary["risk"][k] for k in expected_totals.risk} == expected_totals.risk
    assert summary["risk"]["source"] == "health"  # no model fitted on the fixture's small book
