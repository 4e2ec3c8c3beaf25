"""A per-source budget for refused webhook requests: what a sender that keeps failing verification may cost us.

Each source address has a token bucket that refills at `per_minute` tokens a minute up to `per_minute`; every
refused request takes a token, and a request refused while its source's bucket is empty is answered 429 with
Retry-After and not logged at all. Requests that verify are never throttled: the vendors send from shared address
pools, and someone else's misconfigured app must not get our own events turned away.

With Redis configured the buckets live there, one per source for every web worker (one Lua script per refusal,
atomic, on Redis's clock), so gunicorn's N workers do not give a source N budgets. Without Redis (the embedded
default), and for a while after Redis failed to answer, each worker keeps its own buckets in process: a Redis
outage costs one request its socket timeout, not every refused request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from app.webhook_events.processing import RecentlyScheduled

log = logging.getLogger(__name__)
MAX_SOURCES = 10_000  # buckets kept in process; the least recently refused source is forgotten first
KEY_PREFIX = "cse:refusals:"
REDIS_PAUSE_SECONDS = 10.0
# KEYS[1] the source's bucket; ARGV rate (tokens a second), capacity. Returns the wait (0 when a token was taken)
# as a string: Redis turns a Lua number into an integer. The bucket expires once it would be full again.
TAKE_SCRIPT = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = math.min(capacity, (tonumber(state[1]) or capacity) + (now - (tonumber(state[2]) or now)) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RefusalBudget:
    def __init__(self, per_minute: int, clock=time.monotonic, shared: Callable[[], object] | None = None,
                 key_prefix: str = KEY_PREFIX) -> None:  # fmt: skip
        """`shared` returns the Redis client the buckets live in (None: in process only)."""
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source → (tokens, as of)
        self._lock = threading.Lock()
        self._shared, self._key_prefix = shared, key_prefix
        self._script = None
        self._redis_failed = RecentlyScheduled(seconds=REDIS_PAUSE_SECONDS)

    def take(self, source: str) -> float:
        """Spend one token of `source`'s budget: 0.0 when there was one, else the seconds until there will be."""
        if self.capacity <= 0:  # no limit configured
            return 0.0
        if self._shared is not None and not self._redis_failed.fresh():
            try:
                return self._take_shared(source)
            except Exception:  # noqa: BLE001 - Redis down or frozen: this worker's own buckets stand in
                self._redis_failed.mark()
                log.warning("the shared refusal budget is out of reach; counting in process", exc_info=True)
        return self._take_local(source)

    def _take_shared(self, source: str) -> float:
        if self._script is None:
            self._script = self._shared().register_script(TAKE_SCRIPT)
        return float(self._script(keys=[self._key_prefix + source], args=[self.rate, self.capacity]))

    def _take_local(self, source: str) -> float:
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
