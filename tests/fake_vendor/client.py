"""Acme's API client: requests, the one retry loop of connectors.retry, and the call statistics every client keeps."""

from __future__ import annotations

from typing import Any

import requests

from connectors.retry import Action, RetryPolicy, Verdict, call_with_retries, header, seconds, transport_verdict
from connectors.source import PullStats

VENDOR = "acme"


def classify(error: BaseException) -> Verdict | None:
    """What a failed Acme call means: rate limited, busy, bad credentials, or a request Acme refuses."""
    if not isinstance(error, requests.HTTPError) or error.response is None:
        return transport_verdict(error)
    status = error.response.status_code
    if status == 429:
        wait = seconds(header(error.response.headers, "Retry-After"))
        return Verdict(Action.RETRY_AFTER if wait is not None else Action.TRANSIENT, wait=wait, status=status)
    if status >= 500:
        return Verdict(Action.TRANSIENT, status=status)
    if status in (401, 403):
        return Verdict(Action.FATAL_CONFIG, status=status)
    return Verdict(Action.FATAL_RECORD, status=status)


class AcmeClient:
    def __init__(self, token: str, base_url: str, retry: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.retry = retry or RetryPolicy()
        self.stats = PullStats()

    @classmethod
    def from_settings(cls, settings: Any) -> AcmeClient:
        """From ACME_TOKEN and ACME_BASE_URL, which Settings exposes through value() without knowing Acme."""
        return cls(settings.value("acme_token") or "", settings.value("acme_base_url") or "")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/v1/{path}"

        def send() -> Any:
            response = self.session.request(method, url, timeout=10, **kwargs)
            response.raise_for_status()
            return response.json()

        return call_with_retries(send, vendor=VENDOR, url=url, classify=classify, policy=self.retry, stats=self.stats)
