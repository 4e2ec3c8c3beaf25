"""A Salesforce client built from settings, around the official SDK (simple-salesforce), with retries and re-login.

Three ways in, in the order a deployment usually has them: username + password + security token (SOAP login),
a JWT bearer grant for a connected app (consumer key + private key), or an existing session id + instance URL.

`base_url` is for the sandboxes only. simple-salesforce always builds `https://<host>/...` URLs (login.salesforce.com
for login, the instance host for data), so instead of patching the SDK we give it a requests Session whose transport
adapter sends every request to the sandbox's loopback address: the SDK runs unmodified, exactly as in production.

Retries (connectors.retry, with `classify`): REQUEST_LIMIT_EXCEEDED (403), 5xx and dropped connections back off
exponentially with jitter, per API call (never by re-running a whole multi-page query, which would hand pages over
twice). An expired session is renewed once per call: the SDK already re-logs in by itself for password and JWT
auth; for a bare session id we log in with the credentials when we have them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from connectors.errors import ConnectorConfigError
from connectors.retry import Action, RetryPolicy, Verdict, call_with_retries, transport_verdict
from connectors.source import PullStats

T = TypeVar("T")
API_VERSION = "59.0"
MAX_COLLECTION = 200  # sObject Collections accept at most 200 records per call
# The org's request limit is counted over 24 hours: a few tries cover a burst, more would only burn the budget.
DEFAULT_RETRY = RetryPolicy(attempts=6)


@dataclass(frozen=True)
class SalesforceConfig:
    """Connection settings. Which auth is used follows from which fields are set (see `auth_mode`)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    session_id: str | None = field(default=None, repr=False)
    instance_url: str | None = None
    consumer_key: str | None = None
    private_key: str | None = field(default=None, repr=False)  # PEM text of the connected app's key (JWT bearer)
    private_key_file: str | None = None
    domain: str = "login"  # login (production), test (sandbox orgs) or a My Domain such as "acme.my"
    base_url: str | None = None  # sandbox only: send every request to this http://127.0.0.1:port
    version: str = API_VERSION
    timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> SalesforceConfig:
        """Read `salesforce_*` attributes of app.settings.Settings (missing attributes count as unset)."""
        names = (
            "username",
            "password",
            "security_token",
            "session_id",
            "instance_url",
            "consumer_key",
            "private_key",
            "private_key_file",
            "domain",
            "base_url",
            "version",
        )
        values = {n: getattr(settings, f"salesforce_{n}", None) for n in names}
        values = {k: v for k, v in values.items() if v not in (None, "")}
        return cls(**{**values, **overrides})

    @property
    def url(self) -> str:
        """Where requests go: the sandbox, the instance, or the login host (named in errors)."""
        return self.base_url or self.instance_url or f"https://{self.domain}.salesforce.com"

    @property
    def has_password(self) -> bool:
        return bool(self.username and self.password is not None and self.security_token is not None)

    @property
    def has_jwt(self) -> bool:
        return bool(self.username and self.consumer_key and (self.private_key or self.private_key_file))

    @property
    def auth_mode(self) -> str:
        """'session' when a session id is given (it is tried first), else 'password', else 'jwt'."""
        if self.session_id and (self.instance_url or self.base_url):
            return "session"
        if self.has_password:
            return "password"
        if self.has_jwt:
            return "jwt"
        raise ConnectorConfigError(
            "Salesforce needs SALESFORCE_USERNAME + SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN, or "
            "SALESFORCE_USERNAME + SALESFORCE_CONSUMER_KEY + SALESFORCE_PRIVATE_KEY(_FILE), or "
            "SALESFORCE_SESSION_ID + SALESFORCE_INSTANCE_URL"
        )


class _TimeoutAdapter(HTTPAdapter):
    """The SDK sets no timeouts; a hung connection must not hang a sync or a worker forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class SandboxAdapter(_TimeoutAdapter):
    """Route every request (login host, instance host) to the sandbox base URL, keeping path and query."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout)
        self.base = urlsplit(base_url)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self.base.scheme, self.base.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


def error_code(error: BaseException) -> str | None:
    """The errorCode of a REST error body as simple-salesforce keeps it (a list of {message, errorCode})."""
    content = getattr(error, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode")
    if isinstance(error, SalesforceAuthenticationFailed):
        return str(getattr(error, "code", "")) or None
    return None


def classify(error: BaseException) -> Verdict | None:
    """What a failed Salesforce call means (see connectors.retry). The org's request limit comes with no
    Retry-After: it backs off like a 5xx; an expired session is renewed; a missing record is the record's fault;
    other refusals (credentials, permissions, a query naming a field the org lacks) are the configuration's."""
    if not isinstance(error, SalesforceError):
        return transport_verdict(error)
    code, status = error_code(error), getattr(error, "status", None)
    if isinstance(error, SalesforceAuthenticationFailed) and isinstance(error.code, int):
        status = error.code  # an OAuth login's HTTP status; a SOAP login fault keeps the SDK's 401
    if isinstance(error, SalesforceExpiredSession):
        action = Action.REAUTHENTICATE
    elif code == "REQUEST_LIMIT_EXCEEDED" or (isinstance(status, int) and status >= 500):
        action = Action.TRANSIENT
    elif isinstance(error, SalesforceResourceNotFound | SalesforceMoreThanOneRecord):
        action = Action.FATAL_RECORD
    else:
        action = Action.FATAL_CONFIG
    return Verdict(action, status=status if isinstance(status, int) else None, code=code)


def strip_attributes(record: dict[str, Any]) -> dict[str, Any]:
    """Drop the REST `attributes` envelope (also from parent-relationship objects such as Owner)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        out[key] = strip_attributes(value) if isinstance(value, dict) else value
    return out


class SalesforceClient:
    """One authenticated connection. Counts API calls and logins on the HTTP session itself, so every request
    the SDK makes (including its own re-logins and query_more pages) is counted exactly once."""

    def __init__(
        self,
        config: SalesforceConfig,
        session: requests.Session | None = None,
        *,
        retry: RetryPolicy | None = None,
        stats: PullStats | None = None,
    ) -> None:
        self.config = config
        self.retry = retry or DEFAULT_RETRY
        self.stats = stats or PullStats()
        config.auth_mode  # noqa: B018 - fail fast on unusable settings, before any network call
        self.http = session or requests.Session()
        adapter: HTTPAdapter = (
            SandboxAdapter(config.base_url, config.timeout) if config.base_url else _TimeoutAdapter(config.timeout)
        )
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        self.http.hooks["response"].append(self._count_login)
        self._sf: Salesforce | None = None

    @classmethod
    def from_settings(
        cls, settings: Any, *, retry: RetryPolicy | None = None, stats: PullStats | None = None, **overrides: Any
    ) -> SalesforceClient:
        return cls(SalesforceConfig.from_settings(settings, **overrides), retry=retry, stats=stats)

    def _count_login(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Logins are counted where they happen, since the SDK also logs in again by itself."""
        if urlsplit(response.request.url or "").path.startswith(("/services/Soap/u/", "/services/oauth2/")):
            self.stats.logins += 1

    # -- connection -----------------------------------------------------------------------------------------
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._connect(login=False)
        return self._sf

    def _connect(self, login: bool) -> Salesforce:
        """Build the SDK client. `login=True` skips a configured session id (it has just expired)."""
        c = self.config
        common: dict[str, Any] = {"session": self.http, "version": c.version, "object_pairs_hook": dict}
        mode = c.auth_mode
        if mode == "session" and not login:
            return Salesforce(session_id=c.session_id, instance_url=c.instance_url or c.base_url, **common)
        if c.has_password:
            return self._login(
                lambda: Salesforce(
                    username=c.username, password=c.password, security_token=c.security_token, domain=c.domain, **common
                )
            )
        if c.has_jwt:
            return self._login(
                lambda: Salesforce(
                    username=c.username,
                    consumer_key=c.consumer_key,
                    privatekey=c.private_key,
                    privatekey_file=c.private_key_file,
                    domain=c.domain,
                    **common,
                )
            )
        raise ConnectorConfigError("the session expired and no credentials are configured to log in again")

    @property
    def can_login(self) -> bool:
        return self.config.has_password or self.config.has_jwt

    def relogin(self) -> None:
        self._sf = self._connect(login=True)

    # -- calling --------------------------------------------------------------------------------------------
    def _login(self, fn: Callable[[], Salesforce]) -> Salesforce:
        return call_with_retries(
            fn,
            vendor="salesforce",
            url=self.config.url,
            classify=classify,
            policy=self.retry,
            stats=self.stats,
            counted=False,
        )

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one SDK call with backoff on transient errors and one re-login if the session has expired."""
        return call_with_retries(
            lambda: fn(self.sf),
            vendor="salesforce",
            url=self.config.url,
            classify=classify,
            policy=self.retry,
            stats=self.stats,
            reauthenticate=self.relogin if self.can_login else None,
        )

    # -- reading --------------------------------------------------------------------------------------------
    def query_pages(self, soql: str, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Pages of records (without `attributes`), following nextRecordsUrl: what query_all_iter does, but
        page by page and with each page request retried on its own."""
        page = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted))
        while True:
            yield [strip_attributes(r) for r in page.get("records", [])]
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.call(lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True))

    def describe(self, obj: str) -> dict[str, Any]:
        return self.call(lambda sf: getattr(sf, obj).describe())

    def describe_global(self) -> dict[str, Any]:
        return self.call(lambda sf: sf.describe())

    # -- writing (write-back uses these; retried POSTs should carry an external id, see upsert_many) ----------
    def create(self, obj: str, values: dict[str, Any]) -> str:
        result = self.call(lambda sf: getattr(sf, obj).create(values))
        return result["id"]

    def update(self, obj: str, record_id: str, values: dict[str, Any]) -> None:
        self.call(lambda sf: getattr(sf, obj).update(record_id, values))

    def collection(self, method: str, records: list[dict[str, Any]], all_or_none: bool = False) -> list[dict]:
        """POST (create) or PATCH (update) through sObject Collections, in calls of at most 200 records.

        Each record carries `attributes: {type: ...}`; results come back per record, in order.
        """
        results: list[dict] = []
        for chunk in _chunks(records, MAX_COLLECTION):
            body = json.dumps({"allOrNone": all_or_none, "records": chunk}, default=str)
            results.extend(self.call(lambda sf, b=body: sf.restful("composite/sobjects", method=method, data=b)))
        return results

    def upsert_many(
        self, obj: str, external_id_field: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[dict]:
        """Upsert by external id through Collections (idempotent, so a retried call never duplicates)."""
        results: list[dict] = []
        path = f"composite/sobjects/{obj}/{external_id_field}"
        for chunk in _chunks(records, MAX_COLLECTION):
            typed = [{"attributes": {"type": obj}, **r} for r in chunk]
            body = json.dumps({"allOrNone": all_or_none, "records": typed}, default=str)
            results.extend(self.call(lambda sf, b=body: sf.restful(path, method="PATCH", data=b)))
        return results


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "MAX_COLLECTION",
    "SalesforceClient",
    "SalesforceConfig",
    "classify",
    "error_code",
    "strip_attributes",
]
