"""A burst of webhook events schedules one processing run on real Redis; a finished run re-opens scheduling."""

from __future__ import annotations

import pytest
import redis
from rq import Queue

from app.webhook_events.processing import RecentlyScheduled, release_coalescing, schedule_processing_on_redis


def _job() -> None:  # what the queue would run; never run here
    raise AssertionError("not executed in this test")


@pytest.fixture
def queue(throwaway_redis_url):
    """A redis-server of the test's own (conftest), with the score queue on it."""
    connection = redis.Redis.from_url(throwaway_redis_url)
    yield connection, Queue("score", connection=connection)
    connection.close()


def test_a_burst_schedules_one_run_and_the_next_burst_another(queue):
    connection, rq_queue = queue
    scheduled = [schedule_processing_on_redis(connection, rq_queue, 0, _job) for _ in range(50)]
    assert scheduled.count(True) == 1 and rq_queue.count == 1
    release_coalescing(connection)  # the run started: the next event must schedule the next run
    assert schedule_processing_on_redis(connection, rq_queue, 0, _job)
    assert rq_queue.count == 2


def test_a_process_skips_redis_right_after_scheduling(queue, monkeypatch):
    connection, rq_queue = queue
    recent = RecentlyScheduled(seconds=60)
    calls = []
    real_set = connection.set
    monkeypatch.setattr(connection, "set", lambda *a, **k: calls.append(a) or real_set(*a, **k))
    for _ in range(20):
        schedule_processing_on_redis(connection, rq_queue, 0, _job, recent)
    assert len(calls) == 1 and rq_queue.count == 1
