"""HubSpot's rolling-window rate limits (the ten-secondly burst and the search API's per-second limit)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RollingWindow:
    """At most `limit` admitted requests in any `interval` seconds; refused requests are not counted."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, now: float | None = None) -> tuple[bool, int]:
        """(admitted, remaining in the window after this request)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._hits and self._hits[0] <= now - self.interval:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0
            self._hits.append(now)
            return True, self.limit - len(self._hits)

    def remaining(self) -> int:
        now = time.monotonic()
        with self._lock:
            while self._hits and self._hits[0] <= now - self.interval:
                self._hits.popleft()
            return max(0, self.limit - len(self._hits))
