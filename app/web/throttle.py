"""A per-source budget for refused webhook requests: what a sender that keeps failing verification may cost us.

Each source address has a token bucket that refills at `per_minute` tokens a minute up to `per_minute`; every
refused request takes a token, and a request refused while its source's bucket is empty is answered 429 with
Retry-After and not logged at all. Requests that verify are never throttled: the vendors send from shared address
pools, and someone else's misconfigured app must not get our own events turned away. In-process on purpose — each
web worker keeps its own buckets, so no request waits on Redis for this.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

MAX_SOURCES = 10_000  # buckets kept; the least recently refused source is forgotten first


class RefusalBudget:
    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source → (tokens, as of)
        self._lock = threading.Lock()

    def take(self, source: str) -> float:
        """Spend one token of `source`'s budget: 0.0 when there was one, else the seconds until there will be."""
        if self.capacity <= 0:  # no limit configured
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(source, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            spent = tokens >= 1.0
            self._buckets[source] = (tokens - 1.0 if spent else tokens, now)
            while len(self._buckets) > MAX_SOURCES:
                self._buckets.popitem(last=False)
        return 0.0 if spent else (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
