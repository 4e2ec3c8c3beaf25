"""One retry loop for every vendor: the vendor only says what a failure means, this module decides what to do.

Each client hands `call_with_retries` its SDK call and a classifier, a function from an exception to a `Verdict`:

* `RETRY_AFTER`: the vendor named the wait (Retry-After, a rate-limit reset): wait that long, then try again;
* `TRANSIENT`: busy or failing for a moment (5xx, 429 without a named wait, a dropped connection): back off
  exponentially with jitter, optionally capped (HubSpot's rolling window refills within its interval);
* `UNREACHABLE`: nothing answered at all (DNS failure, connection refused, connect timeout): tried only
  `unreachable_attempts` times with short waits, since a wrong base URL or a host that is down does not heal in the
  minutes a 429 storm lasts, and a sync should say so at once instead of hanging on every object;
* `REAUTHENTICATE`: the session expired: log in again once (when the client can), then repeat the call;
* `FATAL_CONFIG` / `FATAL_RECORD`: no retry can help; the first because of credentials, permissions or a request
  the settings shape, the second because the vendor refused the record itself.

What gives up raises `connectors.errors.VendorError` (naming the vendor, the URL and the attempts) from the SDK's
exception. Every attempt counts as an API call and every wait as a retry in the client's `PullStats`, so the sync
log and the efficiency benchmarks see what the vendor's rate limiter saw. Built on tenacity.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

import httpx
import requests
import tenacity
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from urllib3.exceptions import HTTPError as Urllib3Error

from connectors.errors import VendorConfigError, VendorError
from connectors.source import PullStats

T = TypeVar("T")
_STATS_LOCK = threading.Lock()  # a client may be shared by threads; its counts must still add up


class Action(Enum):
    RETRY_AFTER = "retry after the named wait"
    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"
    REAUTHENTICATE = "re-authenticate"
    FATAL_CONFIG = "fatal: configuration"
    FATAL_RECORD = "fatal: record refused"


RETRIED = frozenset({Action.RETRY_AFTER, Action.TRANSIENT, Action.UNREACHABLE})


@dataclass(frozen=True)
class Verdict:
    """A vendor's reading of one failed attempt. `wait`: for RETRY_AFTER the seconds the vendor named; for
    TRANSIENT the longest backoff worth waiting (None: no cap). `status`/`code` end up on the VendorError."""

    action: Action
    wait: float | None = None
    status: int | None = None
    code: str | None = None


Classifier = Callable[[BaseException], "Verdict | None"]  # None: not a vendor failure; raised as it is


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try, for any vendor. Waits grow from `base_delay`, doubling, to `max_delay` (± `jitter`, so
    parallel workers do not retry in lockstep); no wait, a vendor-named one included, exceeds `max_wait`.
    `sleep` is how the client waits (its pacing too) and `clock` how it tells time: tests pass a recorder and a
    clock that only those waits advance, and check the schedule without spending it."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 60.0
    jitter: float = 0.2
    unreachable_attempts: int = 3
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)  # what pacing measures time with

    def backoff(self, retry_number: int, cap: float | None = None) -> float:
        """The wait before retry `retry_number` (1-based) when the vendor named none."""
        delay = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        if cap is not None:
            delay = min(delay, cap)
        return min(self.max_wait, max(0.0, delay * (1.0 + random.uniform(-self.jitter, self.jitter))))

    def named_wait(self, seconds: float) -> float:
        """A wait the vendor named, within `max_wait`; a reset that is already due still pauses a moment (windows
        are counted in whole seconds, so trying at once would meet the same 429)."""
        return min(self.max_wait, max(seconds, self.base_delay / 10))


def transport_verdict(error: BaseException) -> Verdict | None:
    """Failures below HTTP in the stacks the SDKs use (urllib3 for HubSpot, requests for Salesforce, httpx for
    Intercom): no connection at all is UNREACHABLE, a connection that broke or timed out mid-answer TRANSIENT."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return Verdict(Action.UNREACHABLE)
    if isinstance(error, httpx.TransportError):
        return Verdict(Action.TRANSIENT)
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        reason = error.args[0] if error.args else None
        return transport_verdict(reason) if isinstance(reason, Urllib3Error) else Verdict(Action.TRANSIENT)
    if isinstance(error, MaxRetryError):
        error = error.reason or error
    if isinstance(error, ConnectTimeoutError):  # NewConnectionError and NameResolutionError included
        return Verdict(Action.UNREACHABLE)
    if isinstance(error, Urllib3Error):
        return Verdict(Action.TRANSIENT)
    return None


@dataclass
class _Failed(Exception):
    """One classified failed attempt, carried through tenacity."""

    verdict: Verdict
    error: BaseException


def call_with_retries(
    fn: Callable[[], T],
    *,
    vendor: str,
    url: str,
    classify: Classifier,
    policy: RetryPolicy,
    stats: PullStats,
    reauthenticate: Callable[[], None] | None = None,
    counted: bool = True,
) -> T:
    """Run `fn` until it succeeds or its failures say to stop; see the module docstring. `counted=False` for
    calls that are not API calls (a login)."""
    reauthenticated = False
    unreachable = 0

    def attempt() -> T:
        nonlocal reauthenticated, unreachable
        if counted:
            with _STATS_LOCK:
                stats.api_calls += 1
        try:
            return fn()
        except Exception as error:
            verdict = classify(error)
            if verdict is None:
                raise
            if verdict.action is Action.REAUTHENTICATE and reauthenticate is not None and not reauthenticated:
                reauthenticated = True
                with _STATS_LOCK:
                    stats.relogins += 1
                reauthenticate()
                return attempt()
            unreachable += verdict.action is Action.UNREACHABLE
            raise _Failed(verdict, error) from error

    def give_up(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= policy.attempts or unreachable >= policy.unreachable_attempts

    def wait(state: tenacity.RetryCallState) -> float:
        failed = state.outcome.exception() if state.outcome else None
        verdict = failed.verdict if isinstance(failed, _Failed) else Verdict(Action.TRANSIENT)
        if verdict.action is Action.RETRY_AFTER and verdict.wait is not None:
            return policy.named_wait(verdict.wait)
        return policy.backoff(state.attempt_number, verdict.wait)

    def count_retry(_state: tenacity.RetryCallState) -> None:
        with _STATS_LOCK:
            stats.retries += 1

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, _Failed) and e.verdict.action in RETRIED),
        stop=give_up,
        wait=wait,
        sleep=policy.sleep,
        before_sleep=count_retry,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Failed as failed:
        raise vendor_error(vendor, url, failed.verdict, failed.error, retrying.statistics) from failed.error


def vendor_error(vendor: str, url: str, verdict: Verdict, error: BaseException, statistics: dict) -> VendorError:
    """The one error a caller sees: what failed, where, after how many attempts, and whether a later try may land."""
    attempts = int(statistics.get("attempt_number", 1))
    what = {
        Action.UNREACHABLE: f"cannot reach {url}",
        Action.REAUTHENTICATE: f"the session at {url} expired and could not be renewed",
        Action.FATAL_CONFIG: f"{url} refused the request as configured",
        Action.FATAL_RECORD: f"{url} refused the record",
    }.get(verdict.action, f"{url} kept failing")
    facts = ", ".join(f for f in (f"HTTP {verdict.status}" if verdict.status else "", verdict.code or "") if f)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"{what}{tries}: {type(error).__name__}{f' ({facts})' if facts else ''}: {_short(error)}"
    kind = VendorConfigError if verdict.action is Action.FATAL_CONFIG else VendorError
    return kind(
        vendor,
        message,
        retryable=verdict.action is not Action.FATAL_RECORD,
        status=verdict.status,
        code=verdict.code,
        url=url,
        attempts=attempts,
    )


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(headers: object, name: str) -> str | None:
    """A response header by case-insensitive name, from whatever mapping an SDK exception carries (or None)."""
    if not headers or not hasattr(headers, "items"):
        return None
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == wanted), None)


def seconds(value: str | None) -> float | None:
    """A numeric header value (Retry-After in seconds, a reset time), or None when absent or unreadable."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
