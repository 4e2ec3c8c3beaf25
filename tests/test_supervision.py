"""Issue 16 item 3: `cse worker` and `cse scheduler` ride out a Redis restart (losing its data): they reconnect with
a backoff and carry on, where rq alone quits its worker loop and lets its cron loop die; and SIGTERM stops them
promptly, after a restart and while Redis is down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from app.supervision import Backoff, SupervisedWorker, supervise
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


def _tails(logs) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in logs)


def _wait(condition, seconds: float, what: str, logs) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{_tails(logs)}")
        time.sleep(0.2)


def _finished_jobs(url: str) -> int:
    from rq.registry import FinishedJobRegistry

    try:
        return len(FinishedJobRegistry("score", connection=redis.Redis.from_url(url)))
    except redis.RedisError:
        return 0


class _Processes:
    """`cse worker` and `cse scheduler` on a throwaway Redis (ours to kill), each logging to a file."""

    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # The webhook sweep every 5 s (not 60): after a restart the scheduler's next job, which shows it carried on,
        # comes within seconds instead of at the 30 s dispatch.
        self.env = {**os.environ, "REDIS_URL": self.url, "CSE_DATA_DIR": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "CSE_REDIS_TIMEOUT_SECONDS": "2",
                    "CSE_WEBHOOK_SWEEP_SECONDS": "5"}  # fmt: skip
        self.logs = [tmp_path / "worker.log", tmp_path / "scheduler.log"]
        self.running: list[subprocess.Popen] = []
        self.redis = None

    def start_redis(self) -> None:
        self.redis = throwaway_redis(self.port)
        try:
            self.redis.__enter__()
        except FileNotFoundError as error:
            service_missing("redis-server (for a throwaway instance)", error)

    def stop_redis(self) -> None:
        self.redis.__exit__(None, None, None)  # Redis goes away with everything it held
        self.redis = None

    def __enter__(self) -> _Processes:
        self.start_redis()
        for command, log in zip(("worker", "scheduler"), self.logs, strict=True):
            self.running.append(subprocess.Popen([sys.executable, "-m", "app", command], env=self.env,
                                                 stdout=log.open("w"), stderr=subprocess.STDOUT))  # fmt: skip
        return self

    def wait_for_jobs(self, seconds: float, what: str) -> None:
        _wait(lambda: _finished_jobs(self.url) > 0, seconds, what, self.logs)

    def terminate_and_wait(self) -> None:
        """SIGTERM stops both (the supervisor does not restart a requested stop) well within a minute."""
        assert all(p.poll() is None for p in self.running), "both processes are still running"
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{process.args[-1]} still runs 60 s after SIGTERM\n{_tails(self.logs)}") from None

    def __exit__(self, *exc) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.redis is not None:
            self.stop_redis()


@pytest.mark.redis
def test_worker_and_scheduler_carry_on_after_redis_restarts_and_loses_everything(tmp_path):
    with _Processes(tmp_path) as processes:
        processes.wait_for_jobs(60, "the scheduler's first jobs to run")
        processes.stop_redis()
        time.sleep(3)
        processes.start_redis()
        processes.wait_for_jobs(90, "jobs to run again after the restart")
        processes.terminate_and_wait()


@pytest.mark.redis
def test_sigterm_stops_worker_and_scheduler_while_redis_is_down(tmp_path):
    """rq registers the worker's and the scheduler's death on the way out; with Redis gone that fails, and the stop
    must not be taken for a failure and restarted."""
    with _Processes(tmp_path) as processes:
        processes.wait_for_jobs(60, "the scheduler's first jobs to run")
        processes.stop_redis()
        time.sleep(2)  # both notice: the worker retries its dequeue, the scheduler's loop fails
        processes.terminate_and_wait()


def test_a_stop_asked_while_a_run_fails_is_not_restarted():
    """SIGTERM arrives, then the run ends with an error (its teardown could not reach Redis): the loop ends."""
    runs: list[int] = []
    slept: list[float] = []
    before = signal.getsignal(signal.SIGTERM)

    def run() -> bool:
        runs.append(1)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the supervisor's own handler between rq's
        raise redis.ConnectionError("Connection refused")

    supervise(run, "a test loop", Backoff(first=1, cap=3), sleep=slept.append)
    assert runs == [1] and slept == [], "stopped, not restarted"
    assert signal.getsignal(signal.SIGTERM) == before, "the process's own handlers are back"


def _ready_then_sleep(ready) -> None:
    ready.set()
    time.sleep(60)


def test_a_process_forked_before_it_set_its_own_handlers_still_dies_of_sigterm():
    """rq's worker forks its scheduler process with the supervisor's handler in place, and waits for it to end on
    the SIGTERM it sends; a child that only took note would keep the worker from stopping."""
    import multiprocessing

    exits: list[int | None] = []
    fork = multiprocessing.get_context("fork")

    def run() -> bool:
        ready = fork.Event()
        child = fork.Process(target=_ready_then_sleep, args=(ready,), daemon=True)
        child.start()
        ready.wait(30)  # past Python's own start-up of the child, which drops a signal that arrives during it
        child.terminate()
        child.join(timeout=30)
        exits.append(child.exitcode)
        if child.is_alive():
            child.kill()
        return True

    supervise(run, "a test loop")
    assert exits == [-signal.SIGTERM]


@pytest.mark.redis
def test_the_worker_waits_on_redis_no_longer_than_its_block_plus_rqs_margin(throwaway_redis_url):
    worker = SupervisedWorker(["q"], redis.Redis.from_url(throwaway_redis_url, socket_timeout=2), block_seconds=2)
    assert worker.dequeue_timeout == 2, "a blocking dequeue of 2 s, then the loop comes round (stop, heartbeat)"
    assert worker.connection.connection_pool.connection_kwargs["socket_timeout"] == 12, "not rq's 415 s"


@pytest.mark.redis
def test_the_worker_stops_its_listener_when_the_listener_already_lost_its_subscription(throwaway_redis_url):
    """rq's stop waited for its pub/sub listener, which, once the reply to the UNSUBSCRIBE had reached it, slept
    a minute waiting for a subscription: a SIGTERM took a minute to stop the worker."""
    worker = SupervisedWorker(["q"], redis.Redis.from_url(throwaway_redis_url, socket_timeout=2), block_seconds=2)
    worker.subscribe()
    _wait(lambda: worker.pubsub.subscribed, 10, "the subscription", [])
    worker.pubsub.unsubscribe()
    _wait(lambda: not worker.pubsub.subscribed, 10, "the listener to take the reply", [])
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(timeout=20)
    assert not stopping.is_alive(), "the listener's stop does not wait out its minute"
