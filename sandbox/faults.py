"""Fault injection a test can switch on per sandbox: rate-limit bursts, server errors, latency, expired sessions.

Each sandbox holds one `Faults` and calls `next_fault()` at the top of every API request; the answer says which
failure, if any, to serve instead of the real response. Counters make the faults deterministic, so a test can
say "the next 3 requests get a 429" and know exactly what the client saw.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    rate_limited: int = 0  # the next N requests answer 429
    server_errors: int = 0  # the next N requests answer 5xx (status below)
    server_error_status: int = 503
    expired_sessions: int = 0  # the next N requests answer the vendor's expired-token error
    latency_seconds: float = 0.0  # every request sleeps this long first
    fail_every: int = 0  # every Nth request answers 5xx (0 = never): a steady trickle of errors
    partial_failure_ids: set[str] = field(default_factory=set)  # batch inputs with these ids fail individually
    retry_after_seconds: int = 1
    _requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_fault(self) -> str | None:
        """Return 'rate_limited', 'server_error', 'expired_session' or None for the request being served."""
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self._lock:
            self._requests += 1
            if self.expired_sessions > 0:
                self.expired_sessions -= 1
                return "expired_session"
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return "rate_limited"
            if self.server_errors > 0:
                self.server_errors -= 1
                return "server_error"
            if self.fail_every and self._requests % self.fail_every == 0:
                return "server_error"
        return None

    def reset(self) -> None:
        with self._lock:
            self.rate_limited = self.server_errors = self.expired_sessions = self.fail_every = 0
            self.latency_seconds = 0.0
            self.partial_failure_ids.clear()
