"""Write-back on real RQ: a worker SIGKILLed mid-job and a Redis restart lose nothing and duplicate nothing.

A throwaway redis-server on a free port stands in for production Redis (the shared one on 6379 is never
restarted by a test); the worker is a real `cse worker` process talking to the Salesforce sandbox over loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.settings import Settings
from app.store.models import Action, OutboxRow
from app.writeback.deliver import sweep
from app.writeback.jobs import enqueue_deliveries
from sandbox.redis_server import free_port, throwaway_redis
from tests.conftest import service_missing
from tests.writeback_support import rescore_book


@contextmanager
def _redis(port: int):
    try:
        with throwaway_redis(port) as url:
            yield url
    except FileNotFoundError as error:
        service_missing("redis-server (for a throwaway instance)", error)


def _statuses(store) -> dict[str, int]:
    with store.connect() as conn:
        return dict(conn.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())


def _wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)


def _start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_killed_worker_and_restarted_redis_lose_and_duplicate_nothing(linked, monkeypatch):
    store, sandbox, _ = linked
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    settings = Settings.from_env()
    env = dict(os.environ)
    rescore_book(store)
    with store.begin() as conn:  # in-app messages go to Intercom, which this test does not run
        conn.execute(OutboxRow.__table__.delete().where(OutboxRow.vendor != "salesforce"))
    total = sum(_statuses(store).values())
    assert total > 20

    with _redis(port):
        import redis

        jobs = enqueue_deliveries(settings, store, vendors=("salesforce",), connection=redis.Redis(port=port))
        assert jobs >= 2
        sandbox.org.faults.latency_seconds = 0.3  # every vendor call is slow: the kill lands mid-job
        worker = _start_worker(env)
        _wait_until(lambda: _statuses(store).get("done", 0) > 0, seconds=60)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and the job it was running, mid-batch
        worker.wait()
    assert _statuses(store).get("enqueued", 0) > 0, "the kill left rows in flight"
    sandbox.org.faults.latency_seconds = 0.0

    with _redis(port):  # Redis came back empty: every queued job is gone
        reopened = sweep(store, lambda job_id: False, stale_after=timedelta(0))
        assert reopened > 0
        import redis

        enqueue_deliveries(settings, store, vendors=("salesforce",), connection=redis.Redis(port=port))
        worker = _start_worker(env)
        try:
            _wait_until(lambda: set(_statuses(store)) <= {"done", "parked"}, seconds=120)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait()

    assert _statuses(store) == {"done": total}
    with store.connect() as conn:
        task_keys = list(conn.execute(select(Action.dedupe_key).where(Action.status == "done")).scalars())
    ours = [t["CSE_Dedupe_Key__c"] for t in sandbox.org.live("Task") if t.get("CSE_Dedupe_Key__c")]
    assert sorted(ours) == sorted(key[:80] for key in task_keys), "every task exactly once"


@pytest.fixture(autouse=True)
def _no_shared_redis_touch(monkeypatch):
    """These tests bring their own Redis; make sure nothing falls back to the shared instance."""
    monkeypatch.delenv("REDIS_URL", raising=False)
