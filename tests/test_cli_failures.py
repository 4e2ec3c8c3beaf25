"""Every `cse` command meets the first hour's mistakes with one red line and a non-zero exit, never a traceback.

Each case runs the command as a user does (a separate process, settings from the environment) in a situation an
operator meets: an empty store, a mistyped date, no credentials, a database or a CRM that does not answer, a health
config with keys missing. `--debug` brings the traceback back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, OutboxRow
from connectors.registry import all_connectors
from sandbox.redis_server import free_port

DOWN_DB = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
UNREACHABLE = f"http://127.0.0.1:{free_port()}"


def _credential_free_env() -> dict[str, str]:
    """The test process's environment without any vendor's credentials or Redis."""
    names = {attribute.upper() for record in all_connectors() for attribute in record.credentials}
    return {k: v for k, v in os.environ.items() if k not in names and k != "REDIS_URL" and k != "CSE_DEBUG"}


def cse(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**_credential_free_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}",
            "CSE_DATA_DIR": str(tmp_path)}  # fmt: skip


def assert_one_line_failure(done: subprocess.CompletedProcess, expected: str, exit_code: int | None = None) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    if exit_code is not None:
        assert done.returncode == exit_code, output
    assert "Traceback" not in output, output
    last = done.stderr.strip().splitlines()[-1]
    assert expected in last, output


def partial_health_config(tmp_path: Path) -> Path:
    path = tmp_path / "health.yaml"
    path.write_text("weights:\n  adoption: 25\n  engagement: 20\nbands:\n  healthy: 80\n")
    return path


CASES = {
    "score, empty store": (["score"], {}, "no active accounts"),
    "demo, bad date": (["demo", "--as-of", "2026-13-01"], {}, "give a day as YYYY-MM-DD"),
    "accounts, empty store": (["accounts"], {}, "no scored accounts"),
    "account, unknown": (["account", "Nobody Inc"], {}, "no account 'Nobody Inc'"),
    "accounts, bad sort": (["accounts", "--sort", "mood"], {}, "--sort mood"),
    "connect, no token": (["connect", "hubspot"], {}, "HUBSPOT_ACCESS_TOKEN is not set"),
    "sync, no vendor configured": (["sync"], {}, "cse sync"),
    "worker, no redis": (["worker"], {}, "REDIS_URL is not set"),
    "score, database down": (["score"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
    "migrate, database down": (["migrate"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
    "accounts, database down": (["accounts"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
    "outbox, database down": (["outbox"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
    "writeback, database down": (["writeback"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
    "sync, database down": (["sync"], {"DATABASE_URL": DOWN_DB}, "check DATABASE_URL"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_expected_failures_are_one_red_line(case, env) -> None:
    args, extra, expected = CASES[case]
    assert_one_line_failure(cse(*args, env={**env, **extra}), expected)


def test_partial_health_config_says_which_file_and_key(env, tmp_path) -> None:
    done = cse("score", env={**env, "CSE_HEALTH_CONFIG": str(partial_health_config(tmp_path))})
    assert_one_line_failure(done, "health.yaml")
    assert "fix CSE_HEALTH_CONFIG" in done.stderr


def test_bad_date_exits_with_usage_code(env) -> None:
    done = cse("score", "--as-of", "2026-13-01", env=env)
    assert_one_line_failure(done, "give a day as YYYY-MM-DD", exit_code=2)
    assert "2026-13-01" in done.stderr.strip().splitlines()[-1]


def test_debug_shows_the_traceback(env) -> None:
    done = cse("--debug", "score", "--as-of", "2026-13-01", env=env)
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_writeback_without_credentials_fails_and_leaves_rows_pending(env, tmp_path) -> None:
    engine = make_engine(env["DATABASE_URL"])
    upgrade_schema(engine)
    now = datetime.now()
    with engine.begin() as conn:
        account_id = conn.execute(Account.__table__.insert().values(key="acme", name="Acme")).inserted_primary_key[0]
        conn.execute(OutboxRow.__table__.insert(), [
            {"vendor": "salesforce", "operation": "update_fields", "account_id": account_id, "status": "pending",
             "dedupe_key": f"k{i}", "payload": {"object": "Account", "external_id": f"001{i}", "fields": {}},
             "attempts": 0, "created_at": now, "updated_at": now}
            for i in range(3)
        ])  # fmt: skip
    done = cse("writeback", env=env)
    assert_one_line_failure(done, "salesforce (3 rows)")
    with engine.connect() as conn:
        statuses = conn.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
    assert statuses == [("pending", 3)], "rows wait for credentials; none is stranded as enqueued"


def test_sync_names_each_object_as_it_starts_and_fails_fast_on_an_unreachable_vendor(env) -> None:
    """Progress from the first second: each object is printed as it starts; a host nobody answers on fails at once
    (connection errors are not retried like 429s), in one line at the end."""
    extra = {"HUBSPOT_ACCESS_TOKEN": "pat-test", "HUBSPOT_BASE_URL": UNREACHABLE}
    done = cse("sync", "--vendor", "hubspot", env={**env, **extra})
    assert_one_line_failure(done, "object(s) failed")
    started = [line for line in done.stderr.splitlines() if line.endswith(": pulling")]
    assert "hubspot companies: pulling" in started and len(started) >= 3, done.stderr
    assert "unreachable" in done.stderr.lower() or "connect" in done.stderr.lower(), done.stderr
