"""A run in parts (PostgreSQL, id ranges scored side by side in transactions of their own) leaves what a run in one
transaction leaves; a failed part is completed by the next run without writing anything twice; a run in parts waits
for another and for a sharded run's shards."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from sqlalchemy import text

import app.rescoring as rescoring
from app.rescoring import MAX_PARTS, RUN_LOCK_KEY, rescore, take_run_lock
from engine.health_config import load_health_config
from tests.scale_support import AS_OF, load_linked_book, run_outcome
from tests.test_scoring_chunks import NOW, PROGRAMS, _book_at_once


@pytest.fixture
def postgres_store(store):
    if store.dialect.name != "postgresql":
        pytest.skip("a run in parts is PostgreSQL's (SQLite has one writer and runs in one transaction)")
    return store


def _rescore(store, parts: int):
    return rescore(store, AS_OF, load_health_config(), 2.0, now=NOW, chunk_size=7, programs=PROGRAMS, parts=parts)


def _score_transactions(store) -> int:
    """How many transactions wrote the day's score rows (each row's xmin is the transaction that inserted it)."""
    with store.connect() as conn:
        return conn.scalar(text("SELECT count(DISTINCT xmin::text) FROM scores WHERE as_of = :day"), {"day": AS_OF})


def test_a_run_in_parts_matches_the_book_at_once(postgres_store):
    load_linked_book(postgres_store)
    expected, expected_summary = _book_at_once(postgres_store)

    result = _rescore(postgres_store, parts=3)

    with postgres_store.connect() as conn:
        got = run_outcome(conn)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)
    assert result.totals.summary() == expected_summary
    assert result.accounts == 60 and result.new_actions == len(expected["enrollments"])
    assert _score_transactions(postgres_store) == 3


@pytest.mark.parametrize(("accounts", "parts"), [(12, 2), (60, 1)])
def test_a_book_of_fewer_than_two_chunks_a_part_runs_in_one_transaction(postgres_store, accounts, parts):
    load_linked_book(postgres_store, accounts=accounts)
    _rescore(postgres_store, parts=parts)  # 12 accounts are one chunk of 7 and a half: one part
    assert _score_transactions(postgres_store) == 1


def test_a_failed_part_is_completed_by_the_next_run_without_writing_twice(postgres_store, monkeypatch):
    load_linked_book(postgres_store)
    expected, _ = _book_at_once(postgres_store)
    score_in_chunks = rescoring.score_in_chunks

    def second_part_fails(conn, *args, shard=False, **kwargs):
        run = score_in_chunks(conn, *args, shard=shard, **kwargs)
        if shard and args[3].first > 30:  # scope: the part of the higher ids, after writing all of them
            raise RuntimeError("worker lost")
        return run

    monkeypatch.setattr(rescoring, "score_in_chunks", second_part_fails)
    with pytest.raises(RuntimeError, match="worker lost"):
        _rescore(postgres_store, parts=2)
    with postgres_store.connect() as conn:
        half = run_outcome(conn)
    assert 0 < len(half["scores"]) < 60 and half["book_day"].empty  # one part committed, the run not

    monkeypatch.setattr(rescoring, "score_in_chunks", score_in_chunks)
    _rescore(postgres_store, parts=2)

    with postgres_store.connect() as conn:
        got = run_outcome(conn)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)


@pytest.mark.parametrize("holder_is", ["a run in parts", "a shard"])
def test_a_run_in_parts_waits_for_another_run_in_parts_and_for_shards(postgres_store, holder_is):
    """While another transaction holds the run lock (exclusively as a run in parts does, or shared as a shard of a
    sharded run does), a run in parts waits for it before scoring anything."""
    load_linked_book(postgres_store)
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :key AND NOT granted"
        " AND objid = hashtext(current_schema())::oid"
    )
    with postgres_store.connect() as holder:
        take_run_lock(holder, shared=holder_is == "a shard")
        run = threading.Thread(target=_rescore, args=(postgres_store, 2))
        run.start()
        deadline = time.monotonic() + 30
        while not holder.execute(waiting, {"key": RUN_LOCK_KEY}).scalar() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.execute(waiting, {"key": RUN_LOCK_KEY}).scalar() == 1
        assert _score_transactions(postgres_store) == 0
        holder.rollback()
    run.join(60)
    assert not run.is_alive()
    assert _score_transactions(postgres_store) == 2


def test_parts_are_capped_by_the_connection_pool(postgres_store):
    """Eight chunks asked for nine parts get MAX_PARTS (two connections each and the coordinator's fill the pool)."""
    load_linked_book(postgres_store)
    result = _rescore(postgres_store, parts=9)
    assert result.accounts == 60
    assert _score_transactions(postgres_store) == MAX_PARTS == 7
