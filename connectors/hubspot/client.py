"""A HubSpot client built from settings: the official SDK, plus the retry, pacing and call counting HubSpot needs.

The SDK (`hubspot-api-client`) does the HTTP and parses every response into its models; this wrapper adds what the
SDK leaves to us: backoff on 429 and 5xx that honours `Retry-After` and the X-HubSpot-RateLimit-* window, pacing of
search calls (HubSpot allows five per second per account, outside the ten-secondly budget), and a count of every
HTTP attempt so the sync log and the efficiency benchmark see what a pull really cost.

Only a private-app access token is supported (no OAuth refresh). `base_url` overrides the SDK's host and exists for
the sandbox; production leaves it unset.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hubspot import HubSpot
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from urllib3.exceptions import HTTPError as TransportError
from urllib3.util.retry import Retry

from connectors.source import PullStats

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# urllib3's default retries GETs answered 429/503 with Retry-After, silently and uncounted; we retry ourselves.
NO_TRANSPORT_RETRIES = Retry(total=0, respect_retry_after_header=False, raise_on_status=False)


class HubSpotError(RuntimeError):
    """A HubSpot call that failed for good (after retries, or not retryable)."""


class HubSpotConfigError(HubSpotError):
    """Settings do not describe a usable HubSpot connection."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. Waits grow from `base_delay` doubling to `max_delay`; Retry-After overrides them."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.2  # +/- share of each computed wait, so parallel workers do not retry in lockstep


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK ApiException (each SDK sub-package has its own class; all carry `.status`)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and type(exc).__module__.startswith("hubspot.") else None


def header(exc: BaseException, name: str) -> str | None:
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    if value is None and isinstance(headers, dict):
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return value


def _is_retryable(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUSES
    return isinstance(exc, TransportError)


class HubSpotClient:
    """The SDK with retries and accounting. `call(fn, ...)` runs one SDK method; `api("crm.objects.basic_api")`
    returns a cached SDK API object (the SDK builds a new HTTP pool per attribute access otherwise)."""

    def __init__(
        self,
        access_token: str,
        base_url: str | None = None,
        *,
        stats: PullStats | None = None,
        retry: RetryPolicy | None = None,
        search_requests_per_second: float | None = 4.0,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not access_token:
            raise HubSpotConfigError("HubSpot needs a private app access token (HUBSPOT_ACCESS_TOKEN)")
        options: dict[str, Any] = {"access_token": access_token, "retry": NO_TRANSPORT_RETRIES}
        if base_url:
            options["host"] = base_url.rstrip("/")
        self.sdk = HubSpot(**options)
        self.base_url = base_url
        self.stats = stats or PullStats()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep
        self.search_interval = 1.0 / search_requests_per_second if search_requests_per_second else 0.0
        self._last_search = 0.0
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> HubSpotClient:
        """Build from app Settings: `hubspot_access_token` and, for the sandbox only, `hubspot_base_url`."""
        token = getattr(settings, "hubspot_access_token", None)
        if not token:
            raise HubSpotConfigError("HUBSPOT_ACCESS_TOKEN is not set")
        return cls(token, getattr(settings, "hubspot_base_url", None), **kwargs)

    def api(self, dotted: str) -> Any:
        """`api("crm.objects.search_api")` -> the SDK's SearchApi for generic objects, built once."""
        with self._lock:
            found = self._apis.get(dotted)
            if found is None:
                found = self.sdk
                for part in dotted.split("."):
                    found = getattr(found, part)
                self._apis[dotted] = found
            return found

    def call(self, fn: Callable[..., T], *args: Any, search: bool = False, **kwargs: Any) -> T:
        """Run one SDK call with retries; every HTTP attempt counts in `stats.api_calls`, every retry in `retries`."""
        kwargs.setdefault("_request_timeout", self.timeout)
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if search:
                    self._pace_search()
                with self._lock:
                    self.stats.api_calls += 1
                return fn(*args, **kwargs)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _pace_search(self) -> None:
        if not self.search_interval:
            return
        with self._lock:
            wait = self._last_search + self.search_interval - time.monotonic()
            self._last_search = max(time.monotonic(), self._last_search + self.search_interval)
        if wait > 0:
            self.sleep(wait)

    def _count_retry(self, _state: RetryCallState) -> None:
        with self._lock:
            self.stats.retries += 1

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server sent one; otherwise exponential backoff, capped by the rate-limit window."""
        exc = state.outcome.exception() if state.outcome else None
        attempt = state.attempt_number
        policy = self.retry
        if exc is not None:
            retry_after = header(exc, "Retry-After")
            if retry_after is not None:
                try:
                    return max(0.0, float(retry_after))
                except ValueError:
                    pass
        delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
        if exc is not None and status_of(exc) == 429:
            interval = header(exc, "X-HubSpot-RateLimit-Interval-Milliseconds")
            if interval and interval.isdigit():
                # The budget refills as old requests leave the rolling window: never wait longer than the window.
                delay = min(delay, int(interval) / 1000.0)
        return max(0.0, delay * (1.0 + random.uniform(-policy.jitter, policy.jitter)))
