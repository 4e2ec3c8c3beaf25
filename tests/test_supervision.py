"""Issue 16 item 3: `cse worker` and `cse scheduler` ride out a Redis restart (losing its data): they reconnect with
a backoff and carry on, where rq alone quits its worker loop and lets its cron loop die."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from app.supervision import Backoff, supervise
from sandbox.redis_server import free_port, throwaway_redis
from tests.conftest import service_missing


def test_supervise_restarts_after_failures_with_a_growing_backoff():
    outcomes = [redis.ConnectionError("gone"), redis.TimeoutError("frozen"), False, True]
    slept: list[float] = []

    def run() -> bool:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    supervise(run, "a test loop", Backoff(first=1, cap=3), sleep=slept.append)
    assert outcomes == [] and slept == [1, 2, 3], "every failure restarted, waits doubling up to the cap"


def _wait(condition, seconds: float, what: str, logs) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.2)


def _finished_jobs(url: str) -> int:
    from rq.registry import FinishedJobRegistry

    try:
        return len(FinishedJobRegistry("score", connection=redis.Redis.from_url(url)))
    except redis.RedisError:
        return 0


@pytest.mark.redis
@pytest.mark.xfail(
    reason="known defect, open: after a Redis restart the worker can take over 60 s to stop on SIGTERM "
    "(rq's blocking dequeue on its long socket timeout); the recovery part of this test passes",
    raises=subprocess.TimeoutExpired,
    strict=False,
)
def test_worker_and_scheduler_carry_on_after_redis_restarts_and_loses_everything(tmp_path):
    port = free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "CSE_DATA_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "CSE_REDIS_TIMEOUT_SECONDS": "2"}  # fmt: skip
    logs = [tmp_path / "worker.log", tmp_path / "scheduler.log"]
    processes = []
    try:
        first = throwaway_redis(port)
        url = first.__enter__()
    except FileNotFoundError as error:
        service_missing("redis-server (for a throwaway instance)", error)
    try:
        for command, log in zip(("worker", "scheduler"), logs, strict=True):
            processes.append(subprocess.Popen([sys.executable, "-m", "app", command], env=env,
                                              stdout=log.open("w"), stderr=subprocess.STDOUT))  # fmt: skip
        _wait(lambda: _finished_jobs(url) > 0, 60, "the scheduler's first jobs to run", logs)
        first.__exit__(None, None, None)  # Redis goes away with everything it held
        time.sleep(3)
        first = throwaway_redis(port)
        first.__enter__()
        _wait(lambda: _finished_jobs(url) > 0, 90, "jobs to run again after the restart", logs)
        assert all(p.poll() is None for p in processes), "both processes are still running"
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)  # SIGTERM still stops them: the supervisor does not restart a requested stop
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        first.__exit__(None, None, None)
