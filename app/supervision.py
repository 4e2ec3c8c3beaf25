"""Keeping `cse worker` and `cse scheduler` alive through Redis restarts, freezes and their own errors.

rq's worker leaves its loop on a Redis timeout or any unexpected error, and rq's cron scheduler dies on the first
ConnectionError of its loop; each runs here under a loop that logs why it stopped, waits (exponential backoff,
capped) and starts it again with a fresh registration — Redis may have lost the old one. A stop the process was
asked for (SIGTERM, SIGINT) ends the loop, so a process supervisor (systemd, a Procfile platform) still owns the
process's life.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


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


def _stop(signum, _frame) -> None:
    raise StopAsked(signal.Signals(signum).name)


def supervise(run: Callable[[], bool], what: str, backoff: Backoff | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
    """Call `run` until it returns True (it stopped because it was asked to, or its work is done); a False return
    or an exception is logged and `run` starts again after the backoff. A run that lasted longer than the backoff's
    cap resets it, so a later outage starts again from short waits."""
    backoff = backoff or Backoff()
    while True:
        started = time.monotonic()
        try:
            if run():
                return
            log.error("%s stopped on its own (Redis unreachable?)", what)
        except (StopAsked, KeyboardInterrupt):
            return
        except Exception:  # noqa: BLE001 - anything that ends the loop is logged, then the loop starts again
            log.exception("%s failed", what)
        if time.monotonic() - started > backoff.cap:
            backoff.reset()
        wait = backoff.delay()
        log.warning("restarting %s in %.1f s", what, wait)
        previous = {name: signal.signal(name, _stop) for name in (signal.SIGTERM, signal.SIGINT)}
        try:
            sleep(wait)
        except (StopAsked, KeyboardInterrupt):
            return
        finally:
            for name, handler in previous.items():
                signal.signal(name, handler)
