"""The Procfile's web process boots on a fresh database: its gunicorn workers migrate one at a time, not all at once.

Each worker builds the app, and building the app upgrades the schema; without the store's migration lock, four
workers on an empty database raced to create the same tables and gunicorn halted with `Worker failed to boot`.
The test runs the Procfile's own `web:` line, with four workers, on a fresh SQLite file and a fresh PostgreSQL
schema, a few times each (the race did not lose every time), and also the `release:` step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.redis_server import free_port
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_engine

ROOT = Path(__file__).resolve().parents[1]
BOOTS = 3
READY_SECONDS = 180


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return None


def boot_web(env: dict[str, str], log: Path) -> None:
    """Start the Procfile's web command with 4 workers; wait for /healthz 200 from a server that stays up."""
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, **env, "PORT": str(port), "WEB_CONCURRENCY": "4", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    with log.open("w") as out:
        # A session of its own, so the whole server (sh, the gunicorn master and its workers) is stopped after.
        server = subprocess.Popen(["sh", "-c", procfile()["web"]], cwd=ROOT, env=env, stdout=out, stderr=out,
                                  start_new_session=True)  # fmt: skip
    try:
        url, deadline, answers = f"http://127.0.0.1:{port}/healthz", time.monotonic() + READY_SECONDS, 0
        # Several answers: gunicorn halts the whole server when any worker fails to boot, so one early 200 from
        # the first worker up is not enough to say the web process started.
        while answers < 10 and time.monotonic() < deadline and server.poll() is None:
            if _get(url) == 200:
                answers += 1
            time.sleep(0.3)
        text = log.read_text()
        assert server.poll() is None, f"gunicorn exited with {server.returncode}:\n{text[-3000:]}"
        assert answers == 10, f"/healthz did not answer 200:\n{text[-3000:]}"
        assert "Worker failed to boot" not in text and "Traceback" not in text, text[-3000:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # workers the master left would hold database connections
                os.killpg(server.pid, signal.SIGKILL)


@pytest.mark.parametrize("boot", range(BOOTS))
def test_web_boots_on_a_fresh_sqlite_database(tmp_path, boot) -> None:
    boot_web({"DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "CSE_DATA_DIR": str(tmp_path)}, tmp_path / "web.log")


@pytest.mark.postgres
@pytest.mark.parametrize("boot", range(BOOTS))
def test_web_boots_on_a_fresh_postgresql_schema(tmp_path, boot) -> None:
    engine, schema = _postgres_engine()
    engine.dispose()
    try:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        boot_web({"DATABASE_URL": url, "CSE_DATA_DIR": str(tmp_path)}, tmp_path / "web.log")
    finally:
        _drop_schema(schema)


def test_release_step_migrates_once_and_is_repeatable(tmp_path) -> None:
    """`cse migrate` (the Procfile's release step) creates the schema, and a second run changes nothing."""
    assert procfile()["release"] == "cse migrate"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}", "CSE_DATA_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-m", "app", "migrate"], env=env, capture_output=True, text=True)
            for _ in range(2)]  # fmt: skip
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "schema at revision" in runs[0].stdout and runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.split()[-1] not in ("None", "")
