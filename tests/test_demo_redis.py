"""`cse demo --json` with REDIS_URL set, beside an unrelated worker on the same Redis: clean JSON, complete write-back.

A `cse worker` of another deployment (its own store, no sandboxes) listens on the standard queues of a throwaway
Redis. The demo must keep its jobs to itself (they would fail there, leaving the demo's rows undelivered) and must
print nothing but its JSON on stdout (RQ's worker logs go to stderr).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from sandbox.redis_server import throwaway_redis

ACCOUNTS = 150


def _demo_beside_another_worker(redis_url: str, tmp_path) -> subprocess.CompletedProcess:
    other = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}",
             "CSE_DATA_DIR": str(tmp_path / "other")}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=other, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
               "CSE_DATA_DIR": str(tmp_path / "demo")}  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "app", "demo", "--json", "--accounts", str(ACCOUNTS), "--days", "60"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


@pytest.mark.redis
def test_demo_json_with_redis_and_an_unrelated_worker(tmp_path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("SKIPPED LOUDLY: redis-server is not installed")
    with throwaway_redis() as redis_url:
        done = _demo_beside_another_worker(redis_url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # stdout is the JSON and nothing else
    assert summary["accounts"] == ACCOUNTS
    writeback = summary["crms"]["writeback"]
    assert set(writeback) == {"salesforce", "hubspot", "intercom"}
    assert all(key.endswith(":done") for outcomes in writeback.values() for key in outcomes), writeback
    assert writeback["salesforce"]["update_fields:done"] + writeback["hubspot"]["update_fields:done"] == ACCOUNTS
    assert summary["top_at_risk"] and summary["top_at_risk"][0]["drivers"] and summary["actions_by_kind"]
