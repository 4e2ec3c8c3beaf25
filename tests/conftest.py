"""Shared fixtures: a real store on SQLite and on PostgreSQL.

Outside CI a missing service skips its tests with a loud reason; with CI=true it fails them, so a green CI run
always means both databases were exercised.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from app.store.db import make_engine, upgrade_schema
from sandbox.server import RunningServer, start_server

# Fixtures of the write-back tests (a store linked to a Salesforce sandbox), available to every test module.
pytest_plugins = ["tests.writeback_support"]

POSTGRES_URL = os.environ.get("CSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True, scope="session")
def _model_key_file(tmp_path_factory) -> Iterator[None]:
    """Models trained by tests are signed with a key of the test session, never with the user's own key file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CSE_MODEL_KEY", raising=False)
        patch.setenv("CSE_MODEL_KEY_FILE", str(tmp_path_factory.mktemp("model-key") / "model.key"))
        patch.delenv("CSE_SECRET_KEY", raising=False)
        patch.setenv("CSE_SECRET_KEY_FILE", str(tmp_path_factory.mktemp("web-key") / "web.key"))
        yield


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite, the longest single test (about two minutes), first: under `-n 2` it then starts at once
    beside the other files, rather than late and alone at the end of the run."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is None)


def service_missing(what: str, error: Exception) -> None:
    """Fail under CI, skip loudly elsewhere."""
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it (see shared/SERVICES.md)")
    warnings.warn(f"SKIPPING: {message}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def _postgres_engine() -> tuple[Engine, str]:
    schema = f"cse_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001 - any connection failure means the service is missing
        service_missing("PostgreSQL at " + POSTGRES_URL, error)
    finally:
        admin.dispose()
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    return engine, schema


def _drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Engine:
    """A migrated, empty store on each database the product supports."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'cse.db'}")
        upgrade_schema(engine)
        yield engine
        engine.dispose()
        return
    engine, schema = _postgres_engine()
    try:
        upgrade_schema(engine)
        yield engine
    finally:
        engine.dispose()
        _drop_schema(schema)


class Dispatcher:
    """The WSGI app behind a module's loopback server, swapped per test: one server per module."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[RunningServer, Dispatcher]]:
    """One loopback server per test module; a test sets `dispatcher.app` to the sandbox it wants served."""
    dispatcher = Dispatcher()
    running = start_server(dispatcher)
    yield running, dispatcher
    running.stop()


@pytest.fixture
def throwaway_redis_url() -> Iterator[str]:
    """A redis-server of the test's own (the shared one on 6379 is never flushed), gone with everything after it."""
    from sandbox.redis_server import throwaway_redis

    try:
        with throwaway_redis() as url:
            yield url
    except FileNotFoundError as error:
        service_missing("redis-server (for a throwaway instance)", error)
