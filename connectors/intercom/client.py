"""The official Intercom SDK (`python-intercom`), set up for one workspace, plus what the SDK leaves to us.

The SDK sends the requests, handles auth and parses responses. Three things are added around it:

* **Version pinning.** The SDK sends no `Intercom-Version`, so a workspace would answer in whatever version its
  app is set to. Every request here asks for 2.11, the version our mappings and sandbox are checked against.
* **Retries.** The SDK retries nothing by default. `IntercomClient.call` runs through connectors.retry with
  `classify`: a 429 waits until `X-RateLimit-Reset` (Intercom's window end, UNIX seconds), 408 and 5xx back off
  exponentially with jitter; and a call that succeeds with `X-RateLimit-Remaining: 0` makes the next call wait
  for the reset instead of burning a request on a certain 429. Every attempt counts in `stats.api_calls`, so
  the sync log and the API-efficiency benchmark see what the vendor's rate limiter sees.

Bulk reads go through `request()`: the SDK's own HTTP client (its auth, base URL, headers and query encoding)
without the SDK's response models. python-intercom 5.0.1 builds those with per-object type introspection that
costs about 6 ms per contact, i.e. minutes of CPU for a workspace the API itself serves in seconds, and the pull
needs the records as plain JSON anyway. Writes and one-off reads can use the typed methods on `sdk`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from intercom import Intercom
from intercom.core.api_error import ApiError

from connectors.errors import ConnectorConfigError
from connectors.retry import Action, RetryPolicy, Verdict, call_with_retries, header, seconds, transport_verdict
from connectors.source import PullStats

API_VERSION = "2.11"
PRODUCTION_URL = "https://api.intercom.io"
T = TypeVar("T")
ResponseHook = Callable[[httpx.Response], None]
# Error codes that say the record itself is refused (missing, invalid): no retry, now or later, will land it.
RECORD_REFUSED = frozenset({"not_found", "company_not_found", "parameter_invalid", "parameter_not_found",
                            "admin_not_found", "data_invalid", "conflict"})  # fmt: skip


@dataclass
class RateLimitState:
    """The last rate-limit headers seen (None until a response carried them)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


class IntercomClient:
    """An `intercom.Intercom` SDK client plus retries, call counting and rate-limit awareness."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str | None = None,
        version: str = API_VERSION,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        stats: PullStats | None = None,
        clock: Callable[[], float] = time.time,
        response_hooks: Iterable[ResponseHook] = (),
    ) -> None:
        if not access_token:
            raise ConnectorConfigError("an Intercom access token is required (INTERCOM_ACCESS_TOKEN)")
        self.retry = retry or RetryPolicy()
        self.stats = stats or PullStats()
        self.rate_limit = RateLimitState()
        self._local = threading.local()  # the body a call saw, per thread: the pusher calls from a thread pool
        self.base_url = base_url.rstrip("/") if base_url else PRODUCTION_URL
        self._clock = clock
        self.http = httpx.Client(timeout=timeout, event_hooks={"response": [self._observe, *response_hooks]})
        options: dict[str, Any] = {"base_url": base_url.rstrip("/")} if base_url else {}
        self.sdk = Intercom(
            token=access_token, headers={"Intercom-Version": version}, httpx_client=self.http, **options
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> IntercomClient:
        """Client from app settings: `intercom_access_token`, and `intercom_base_url` (sandboxes only)."""
        return cls(
            getattr(settings, "intercom_access_token", None) or "",
            base_url=getattr(settings, "intercom_base_url", None),
            **kwargs,
        )

    def close(self) -> None:
        self.http.close()

    @property
    def last_body(self) -> Any:
        """The parsed body of this thread's latest response (None before any)."""
        return getattr(self._local, "body", None)

    @last_body.setter
    def last_body(self, value: Any) -> None:
        self._local.body = value

    # --- observing responses --------------------------------------------------------------------------------------

    def _observe(self, response: httpx.Response) -> None:
        """Remember the rate-limit headers and the parsed body (the SDK keeps neither)."""
        headers = response.headers
        try:
            if "x-ratelimit-limit" in headers:
                self.rate_limit.limit = int(headers["x-ratelimit-limit"])
            if "x-ratelimit-remaining" in headers:
                self.rate_limit.remaining = int(headers["x-ratelimit-remaining"])
            if "x-ratelimit-reset" in headers:
                self.rate_limit.reset = float(headers["x-ratelimit-reset"])
        except ValueError:
            pass  # a malformed header must not fail the call; the retry logic falls back to backoff
        response.read()
        try:
            self.last_body = json.loads(response.text) if response.text.strip() else None
        except ValueError:
            self.last_body = None

    # --- calling with retries -------------------------------------------------------------------------------------

    def call(self, operation: Callable[[], T]) -> tuple[T, Any]:
        """Run one SDK call with retries; returns (the SDK's result, the response body as plain JSON)."""

        def attempt() -> tuple[T, Any]:
            self._throttle()
            self.last_body = None
            result = operation()
            return result, self.last_body

        return call_with_retries(
            attempt, vendor="intercom", url=self.base_url, classify=self.classify, policy=self.retry, stats=self.stats
        )

    def request(self, method: str, path: str, *, params: dict | None = None, json_body: Any = None) -> Any:
        """One API request through the SDK's HTTP client, with retries; returns the parsed JSON body.

        A non-2xx answer is the SDK's ApiError (status, headers, body), as from its typed methods, and fails as a
        VendorError once retrying is over.
        """

        def send() -> Any:
            response = self.sdk._client_wrapper.httpx_client.request(
                path, method=method, params=params, json=json_body, omit=None
            )
            if not 200 <= response.status_code < 300:
                raise ApiError(status_code=response.status_code, headers=dict(response.headers), body=self.last_body)
            return self.last_body

        return self.call(send)[0]

    def _throttle(self) -> None:
        """The window is spent: wait for its reset rather than collect a 429."""
        state = self.rate_limit
        if state.remaining == 0 and state.reset is not None:
            delay = state.reset - self._clock()
            if delay > 0:
                self.retry.sleep(min(delay, self.retry.max_wait))
            state.remaining = None

    def classify(self, error: BaseException) -> Verdict | None:
        """What a failed Intercom call means (see connectors.retry): 429 waits for the window's reset, 408 and 5xx
        are transient, 401/403 the token, the codes in RECORD_REFUSED the record, other 4xx the request."""
        self.rate_limit.remaining = None  # a retry's wait replaces the throttle's (a 429 waits for the reset itself)
        if not isinstance(error, ApiError):
            return transport_verdict(error)
        status, code = error.status_code, error_code(error)
        reset = seconds(header(error.headers, "X-RateLimit-Reset"))
        if status == 429 and reset is not None:
            return Verdict(Action.RETRY_AFTER, reset - self._clock(), status, code)
        retry_after = seconds(header(error.headers, "Retry-After"))
        if status is not None and (status in (408, 429) or status >= 500):
            action = Action.RETRY_AFTER if retry_after is not None else Action.TRANSIENT
            return Verdict(action, retry_after, status, code)
        if code in RECORD_REFUSED:
            return Verdict(Action.FATAL_RECORD, status=status, code=code)
        return Verdict(Action.FATAL_CONFIG, status=status, code=code)


def error_code(error: BaseException) -> str | None:
    """The first Intercom error code of an SDK ApiError (e.g. 'scroll_exists'), if any."""
    body = getattr(error, "body", None)
    if hasattr(body, "errors"):
        errors = body.errors or []
        first = errors[0] if errors else None
        return getattr(first, "code", None)
    if isinstance(body, dict):
        errors = body.get("errors") or []
        return errors[0].get("code") if errors and isinstance(errors[0], dict) else None
    return None
