"""Keeping `cse worker` and `cse scheduler` alive through Redis restarts, freezes and their own errors, and stopping
them promptly when asked.

rq's worker leaves its loop on a Redis timeout or any unexpected error, and rq's cron scheduler dies on the first
ConnectionError of its loop; each runs here under a loop that logs why it stopped, waits (exponential backoff,
capped) and starts it again with a fresh registration — Redis may have lost the old one. A stop the process was
asked for (SIGTERM, SIGINT) ends the loop whenever it comes — during a run, between runs, or while a run fails on
an unreachable Redis — so a process supervisor (systemd, a Procfile platform) still owns the process's life.

The rq classes below add what that needs to rq's own: they tell the loop about a stop (rq's signal handlers
replace ours while they run), honour a stop that came before their handlers were in place, bound every Redis
wait of the worker, and stop the worker's pub/sub listener without waiting on it (see SupervisedWorker).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long the worker's pub/sub listener waits per turn, and so the longest its stop waits for it.
LISTEN_WAIT_SECONDS = 1
# rq's dequeue blocks for worker_ttl - 15 seconds and sets the socket timeout 10 s above that.
_RQ_TTL_OVER_BLOCK = 15

_stop = threading.Event()
_supervisor_pid = 0


class StopAsked(Exception):
    """SIGTERM or SIGINT arrived while the supervisor waited to restart."""


@dataclass
class Backoff:
    first: float = 1.0
    cap: float = 30.0
    _next: float = 0.0

    def delay(self) -> float:
        self._next = min(self.cap, self._next * 2) if self._next else self.first
        return self._next

    def reset(self) -> None:
        self._next = 0.0


def log_to_stderr() -> None:
    """What a long-running process logs (its outages, the events it processed), with a timestamp, to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def stop_asked() -> bool:
    """Whether this process was asked to stop (SIGTERM, SIGINT) since `supervise` started."""
    return _stop.is_set()


def note_stop(signum=None, _frame=None) -> None:
    """Remember a stop request; the signal handler between rq's, and what rq's handlers call first (below).

    A process forked before it set handlers of its own (rq's scheduler process) gets the signal's default action
    instead: the worker's teardown waits for that process to end on its SIGTERM."""
    if signum is not None and os.getpid() != _supervisor_pid:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _stop.set()


def _interrupt(signum, _frame) -> None:
    _stop.set()
    raise StopAsked(signal.Signals(signum).name)


def _handle_stops(handler) -> None:
    for name in STOP_SIGNALS:
        signal.signal(name, handler)


def supervise(run: Callable[[], bool], what: str, backoff: Backoff | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
    """Call `run` until it returns True (it stopped because it was asked to, or its work is done); a False return
    or an exception is logged and `run` starts again after the backoff, unless a stop was asked meanwhile. A run
    that lasted longer than the backoff's cap resets it, so a later outage starts again from short waits."""
    global _supervisor_pid
    backoff = backoff or Backoff()
    _stop.clear()
    _supervisor_pid = os.getpid()
    previous = {name: signal.getsignal(name) for name in STOP_SIGNALS}
    _handle_stops(note_stop)  # until rq installs its handlers, and again after a run left its stale ones behind
    try:
        while not stop_asked():
            started = time.monotonic()
            try:
                if run() or stop_asked():
                    return
                log.error("%s stopped on its own (Redis unreachable?)", what)
            except (StopAsked, StopRequested, KeyboardInterrupt):
                return
            except Exception:  # noqa: BLE001 - anything that ends the loop is logged, then the loop starts again
                if stop_asked():  # stopping failed on the way out (rq registers its death in an unreachable Redis)
                    log.warning("%s stopped with an error", what, exc_info=True)
                    return
                log.exception("%s failed", what)
            if time.monotonic() - started > backoff.cap:
                backoff.reset()
            wait = backoff.delay()
            log.warning("restarting %s in %.1f s", what, wait)
            _handle_stops(_interrupt)
            try:
                sleep(wait)
            except (StopAsked, KeyboardInterrupt):
                return
            finally:
                _handle_stops(note_stop)
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


class SupervisedWorker(SimpleWorker):
    """rq's in-process worker, made to stop on time and to bound its waits on Redis.

    - Its blocking dequeue (BLPOP) lasts `block_seconds`, passed to rq as its worker TTL: rq raises the
      connection's socket timeout to 10 s above the block, for every command of the worker, so with rq's default
      TTL a frozen Redis held the worker (and its stop) for ~7 minutes whatever CSE_REDIS_TIMEOUT_SECONDS said.
    - Its pub/sub listener (rq's command channel) wakes every LISTEN_WAIT_SECONDS. rq's listens 60 s at a time and
      its stop waits for the listener (redis-py 8's PubSubWorkerThread.stop() joins it): when the listener had
      already taken the reply to the UNSUBSCRIBE, a SIGTERM took a minute to stop the worker.
    - The listener is stopped without a Redis call and also when rq's teardown fails on an unreachable Redis;
      rq skipped it then, and every Redis outage left one more listener reconnecting forever.
    - A stop asked before rq's signal handlers were in place ends the loop at its first dequeue.
    """

    def __init__(self, queues, connection, block_seconds: float, **options) -> None:
        super().__init__(queues, connection=connection,
                         worker_ttl=max(1, math.ceil(block_seconds)) + _RQ_TTL_OVER_BLOCK, **options)  # fmt: skip

    def request_stop(self, signum, frame) -> None:
        note_stop()
        super().request_stop(signum, frame)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if stop_asked():
            return None  # rq's loop ends when there is nothing to run
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=LISTEN_WAIT_SECONDS, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)  # fmt: skip

    def unsubscribe(self) -> None:
        """The listener stops within its wait and closes its connection, which ends the subscription."""
        thread, self.pubsub_thread = self.pubsub_thread, None
        if thread is not None:
            thread.stop()
            thread.join(timeout=2 * LISTEN_WAIT_SECONDS)  # redis-py before 8: stop() only flags it
        if self.pubsub is not None:
            self.pubsub.close()

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            self.unsubscribe()


class SupervisedCron(CronScheduler):
    """rq's cron scheduler, telling the supervisor about a stop, and honouring one asked before its handlers."""

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if stop_asked():
            raise StopRequested()

    def _request_stop(self, signum, frame) -> None:
        note_stop()
        super()._request_stop(signum, frame)
