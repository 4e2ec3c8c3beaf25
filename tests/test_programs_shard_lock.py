"""The programs lock on PostgreSQL: scoring shards enter their accounts in the programs together (shared lock),
while a tick or any other enrollment holds it alone (exclusive), observed in pg_locks rather than by timing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection

from app.programs.definitions import active_programs
from app.programs.tick import take_lock
from app.scoring_chunks import active_ids, score_in_chunks
from app.store.scope import IdRange
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from tests.conftest import _drop_schema, _postgres_engine
from tests.scale_support import AS_OF, load_linked_book, programs_lock, wait_for_locks

PROGRAMS = active_programs(None, DEFAULT_PROGRAMS_DIR)


@pytest.fixture
def postgres():
    engine, schema = _postgres_engine()
    try:
        from app.store.db import upgrade_schema

        upgrade_schema(engine)
        load_linked_book(engine)
        yield engine
    finally:
        engine.dispose()
        _drop_schema(schema)


def _halves(store) -> list[IdRange]:
    with store.connect() as conn:
        ids = active_ids(conn, AS_OF)
    middle = len(ids) // 2
    return [IdRange(int(ids[0]), int(ids[middle - 1])), IdRange(int(ids[middle]), int(ids[-1]))]


def _score_shard(conn: Connection, scope: IdRange) -> int:
    conn.exec_driver_sql("SET LOCAL lock_timeout = '60s'")  # a regression fails instead of hanging the session
    run = score_in_chunks(conn, AS_OF, load_health_config(), 2.0, scope, chunk_size=7, programs=PROGRAMS, shard=True)
    return run.new_actions


def test_two_shards_hold_the_programs_lock_together_and_a_tick_waits_for_both(postgres):
    first, second = _halves(postgres)
    with postgres.connect() as a, postgres.connect() as b, postgres.connect() as observer:
        a.begin()
        b.begin()
        entered = _score_shard(a, first)  # a's transaction holds the lock from its first chunk's entries on
        entered += _score_shard(b, second)  # would wait for a's commit under an exclusive lock
        assert entered > 0, "no account entered a program: the shards' enrollment step did not run"
        pids = {a.connection.driver_connection.info.backend_pid, b.connection.driver_connection.info.backend_pid}
        assert programs_lock(observer) == sorted((pid, "ShareLock", True) for pid in pids)

        tick_got_it = threading.Event()

        def tick() -> None:
            with postgres.begin() as conn:
                take_lock(conn)  # what every tick does first
                tick_got_it.set()

        ticking = threading.Thread(target=tick)
        ticking.start()
        waiting = wait_for_locks(observer, lambda locks: ("ExclusiveLock", False) in [(m, g) for _, m, g in locks])
        assert not tick_got_it.is_set() and len(waiting) == 3
        a.commit()
        assert not tick_got_it.is_set(), "the tick went ahead while a shard still held the lock"
        b.commit()
        ticking.join(timeout=60)
        assert tick_got_it.is_set()


def test_a_shard_waits_for_a_tick(postgres):
    first, _ = _halves(postgres)
    with postgres.connect() as tick, postgres.connect() as observer:
        tick.begin()
        take_lock(tick)
        done = threading.Event()

        def shard() -> None:
            with postgres.begin() as conn:
                _score_shard(conn, first)
                done.set()

        scoring = threading.Thread(target=shard)
        scoring.start()
        wait_for_locks(observer, lambda locks: ("ShareLock", False) in [(m, g) for _, m, g in locks])
        assert not done.is_set()
        tick.commit()
        scoring.join(timeout=120)
        assert done.is_set()
