"""The official Intercom SDK (`python-intercom`), set up for one workspace, plus what the SDK leaves to us.

The SDK sends the requests, handles auth and parses responses. Three things are added around it:

* **Version pinning.** The SDK sends no `Intercom-Version`, so a workspace would answer in whatever version its
  app is set to. Every request here asks for 2.11, the version our mappings and sandbox are checked against.
* **Retries.** The SDK retries nothing by default. `IntercomClient.call` retries 429, 5xx and transport errors
  with tenacity: a 429 waits until `X-RateLimit-Reset` (Intercom's window end, UNIX seconds), a 5xx backs off
  exponentially with jitter, and a call that succeeds with `X-RateLimit-Remaining: 0` makes the next call wait
  for the reset instead of burning a request on a certain 429.
* **Counting.** An httpx response hook counts every HTTP request (retries included) into `stats.api_calls`, so
  the sync log and the API-efficiency benchmark see what the vendor's rate limiter sees.

Bulk reads go through `request()`: the SDK's own HTTP client (its auth, base URL, headers and query encoding)
without the SDK's response models. python-intercom 5.0.1 builds those with per-object type introspection that
costs about 6 ms per contact, i.e. minutes of CPU for a workspace the API itself serves in seconds, and the pull
needs the records as plain JSON anyway. Writes and one-off reads can use the typed methods on `sdk`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import tenacity
from intercom import Intercom
from intercom.core.api_error import ApiError

from connectors.source import PullStats

API_VERSION = "2.11"
T = TypeVar("T")
ResponseHook = Callable[[httpx.Response], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit production; tests shrink the waits (the logic stays the same)."""

    attempts: int = 8
    backoff_base: float = 0.5  # first 5xx wait; doubles per attempt
    backoff_max: float = 30.0
    max_wait: float = 60.0  # no single wait (a far-off X-RateLimit-Reset included) exceeds this
    jitter: float = 0.2  # +/- share of the backoff, so parallel workers do not retry in lockstep


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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        response_hooks: Iterable[ResponseHook] = (),
    ) -> None:
        if not access_token:
            raise ValueError("an Intercom access token is required (INTERCOM_ACCESS_TOKEN)")
        self.retry = retry or RetryPolicy()
        self.stats = stats or PullStats()
        self.rate_limit = RateLimitState()
        self.last_body: Any = None
        self._sleep, self._clock = sleep, clock
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

    # --- observing responses --------------------------------------------------------------------------------------

    def _observe(self, response: httpx.Response) -> None:
        """Count the call, remember the rate-limit headers and the parsed body (the SDK keeps neither)."""
        self.stats.api_calls += 1
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
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            retry=tenacity.retry_if_exception(retryable),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )

        def attempt() -> tuple[T, Any]:
            self._throttle()
            self.last_body = None
            result = operation()
            return result, self.last_body

        return retrying(attempt)

    def request(self, method: str, path: str, *, params: dict | None = None, json_body: Any = None) -> Any:
        """One API request through the SDK's HTTP client, with retries; returns the parsed JSON body.

        A non-2xx answer raises the SDK's ApiError (status, headers, body), as its typed methods do.
        """

        def send() -> Any:
            response = self.sdk._client_wrapper.httpx_client.request(
                path, method=method, params=params, json=json_body, omit=None
            )
            if not 200 <= response.status_code < 300:
                raise ApiError(status_code=response.status_code, headers=dict(response.headers), body=self.last_body)
            return self.last_body

        return self.call(send)[0]

    def _count_retry(self, _state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1

    def _throttle(self) -> None:
        """The window is spent: wait for its reset rather than collect a 429."""
        state = self.rate_limit
        if state.remaining == 0 and state.reset is not None:
            delay = state.reset - self._clock()
            if delay > 0:
                self._sleep(min(delay, self.retry.max_wait))
            state.remaining = None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        attempt = state.attempt_number
        self.rate_limit.remaining = None  # this wait replaces the throttle's (a 429 waits for the reset itself)
        backoff = min(self.retry.backoff_base * 2 ** (attempt - 1), self.retry.backoff_max)
        backoff *= 1 + random.uniform(-self.retry.jitter, self.retry.jitter)
        if isinstance(error, ApiError):
            headers = {k.lower(): v for k, v in (error.headers or {}).items()}
            if error.status_code == 429 and "x-ratelimit-reset" in headers:
                try:
                    until_reset = float(headers["x-ratelimit-reset"]) - self._clock()
                except ValueError:
                    until_reset = backoff
                # The reset is whole seconds; a small positive wait covers a reset that is already due.
                return min(max(until_reset, self.retry.backoff_base * 0.1), self.retry.max_wait)
            if "retry-after" in headers:
                try:
                    return min(max(float(headers["retry-after"]), 0.0), self.retry.max_wait)
                except ValueError:
                    pass
        return min(backoff, self.retry.max_wait)


def retryable(error: BaseException) -> bool:
    """429, 408, 5xx and network failures are worth retrying; other 4xx answers would only repeat."""
    if isinstance(error, ApiError):
        return error.status_code is not None and (error.status_code in (408, 429) or error.status_code >= 500)
    return isinstance(error, httpx.TransportError)


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
