"""A HubSpot client built from settings: the official SDK, plus the retry, pacing and call counting HubSpot needs.

The SDK (`hubspot-api-client`) does the HTTP and parses every response into its models; this wrapper adds what the
SDK leaves to us: pacing of search calls (HubSpot allows five per second per account, outside the ten-secondly
budget), and `classify`, which tells connectors.retry what a failure means: 429 waits for `Retry-After`, or backs
off no longer than the X-HubSpot-RateLimit-* window; 5xx backs off; 401/403 is the token; other 4xx the record.

Only a private-app access token is supported (no OAuth refresh). `base_url` overrides the SDK's host and exists for
the sandbox; production leaves it unset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.errors import ConnectorConfigError
from connectors.retry import Action, RetryPolicy, Verdict, call_with_retries, header, seconds, transport_verdict
from connectors.source import PullStats

T = TypeVar("T")
PRODUCTION_URL = "https://api.hubapi.com"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# urllib3's default retries GETs answered 429/503 with Retry-After, silently and uncounted; we retry ourselves.
NO_TRANSPORT_RETRIES = Retry(total=0, respect_retry_after_header=False, raise_on_status=False)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK ApiException (each SDK sub-package has its own class; all carry `.status`)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and type(exc).__module__.startswith("hubspot.") else None


def classify(exc: BaseException) -> Verdict | None:
    """What a failed HubSpot call means (see connectors.retry)."""
    status = status_of(exc)
    if status is None:
        return transport_verdict(exc)
    headers = getattr(exc, "headers", None)
    if status in RETRYABLE_STATUSES:
        retry_after = seconds(header(headers, "Retry-After"))
        if retry_after is not None:
            return Verdict(Action.RETRY_AFTER, retry_after, status)
        window = seconds(header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")) if status == 429 else None
        # The budget refills as old requests leave the rolling window: never wait longer than the window.
        return Verdict(Action.TRANSIENT, window / 1000.0 if window else None, status)
    return Verdict(Action.FATAL_CONFIG if status in (401, 403) else Action.FATAL_RECORD, status=status)


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
    ) -> None:
        if not access_token:
            raise ConnectorConfigError("HubSpot needs a private app access token (HUBSPOT_ACCESS_TOKEN)")
        self.base_url = base_url.rstrip("/") if base_url else None
        options: dict[str, Any] = {"access_token": access_token, "retry": NO_TRANSPORT_RETRIES}
        if self.base_url:
            options["host"] = self.base_url
        self.sdk = HubSpot(**options)
        self.stats = stats or PullStats()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.search_interval = 1.0 / search_requests_per_second if search_requests_per_second else 0.0
        self._last_search = 0.0
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> HubSpotClient:
        """Build from app Settings: `hubspot_access_token` and, for the sandbox only, `hubspot_base_url`."""
        token = getattr(settings, "hubspot_access_token", None)
        if not token:
            raise ConnectorConfigError("HUBSPOT_ACCESS_TOKEN is not set")
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

        def attempt() -> T:
            if search:
                self._pace_search()
            return fn(*args, **kwargs)

        return call_with_retries(
            attempt,
            vendor="hubspot",
            url=self.base_url or PRODUCTION_URL,
            classify=classify,
            policy=self.retry,
            stats=self.stats,
        )

    def _pace_search(self) -> None:
        if not self.search_interval:
            return
        with self._lock:
            now = self.retry.clock()
            wait = self._last_search + self.search_interval - now
            self._last_search = max(now, self._last_search + self.search_interval)
        if wait > 0:
            self.retry.sleep(wait)
