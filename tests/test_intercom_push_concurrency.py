"""Intercom's write-back over a bounded thread pool, against the sandbox through the real SDK: never more calls in
flight than the configured concurrency, every company written exactly once, and the rate limit waited out."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest

from app.settings import Settings
from connectors.intercom import IntercomClient
from connectors.intercom.push import IntercomPusher
from connectors.push import PushRow
from connectors.registry import connector
from connectors.retry import RetryPolicy
from sandbox.intercom import DEFAULT_TOKEN, IntercomState, RateLimiter, Workspace, create_app
from sandbox.server import serving

COMPANIES = 30


class InFlight:
    """WSGI middleware: the most requests the sandbox served at once, and every response's (method, path, status)."""

    def __init__(self, app) -> None:
        self.app = app
        self.now = self.peak = 0
        self.answers: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

        def record(status: str, headers, *rest):
            with self._lock:
                self.answers.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0])))
            return start_response(status, headers, *rest)

        try:
            time.sleep(0.005)  # a real API's latency, so the client's threads do overlap
            return list(self.app(environ, record))
        finally:
            with self._lock:
                self.now -= 1


@pytest.fixture()
def workspace() -> Workspace:
    ws = Workspace()
    ws.create_data_attribute({"name": "cse_health_score", "model": "company", "data_type": "float"})
    for i in range(COMPANIES):
        ws.add_company({"company_id": f"co-{i}", "name": f"Company {i}"})
    return ws


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrent_updates_stay_within_the_pool_and_the_rate_limit(workspace, concurrency):
    state = IntercomState(workspace=workspace, limiter=RateLimiter(limit=5, window_seconds=1))
    app = InFlight(create_app(state))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with serving(app) as server:
        server.server.stats["Enabled"] = True  # cheroot counts the connections it accepts
        policy = replace(RetryPolicy(attempts=10, base_delay=0.01, max_wait=5.0), sleep=sleep)
        client = IntercomClient(DEFAULT_TOKEN, base_url=server.base_url, retry=policy)
        pusher = IntercomPusher(client, concurrency=concurrency)
        ids = sorted(workspace.companies)
        rows = [PushRow(i, {"external_id": record_id, "fields": {"cse_health_score": float(i)}})
                for i, record_id in enumerate(ids)]  # fmt: skip
        results = pusher.update_fields(rows)
        client.close()
        connections = server.server.stats["Accepts"]

    assert [r.row_id for r in results] == [r.row_id for r in rows], "one result per row, in the rows' order"
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert app.peak <= concurrency
    assert connections <= concurrency, "the threads share the SDK's pool of kept-alive connections"
    if concurrency > 1:
        assert app.peak > 1, "the pool did send calls side by side"
    written = Counter(path for method, path, status in app.answers if method == "PUT" and status == 200)
    assert written == Counter(f"/companies/{record_id}" for record_id in ids), "every company exactly once"
    assert all(workspace.companies[r]["custom_attributes"]["cse_health_score"] == float(i) for i, r in enumerate(ids))
    assert waits, "30 calls at 5 per second: the client must have waited for the window's reset"
    assert max(waits) <= 1.5, "waits follow X-RateLimit-Reset (a one-second window), not a blind backoff"


def test_concurrency_comes_from_the_settings():
    settings = Settings.from_env({"INTERCOM_ACCESS_TOKEN": "t", "INTERCOM_PUSH_CONCURRENCY": "3"})
    assert connector("intercom").build_pusher(settings).concurrency == 3
    default = connector("intercom").build_pusher(Settings.from_env({"INTERCOM_ACCESS_TOKEN": "t"}))
    assert default.concurrency == 8
    with pytest.raises(ValueError):
        IntercomPusher(IntercomClient("t"), concurrency=0)
