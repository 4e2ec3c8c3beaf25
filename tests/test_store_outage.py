"""Issue 16 item 9: with the database down or frozen, a webhook sender gets a quick 503 with Retry-After (JSON),
never a 500 page or a hang; the web app's PostgreSQL connections carry a statement timeout."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text

from app.store.db import make_engine
from app.web import create_app
from sandbox.redis_server import free_port
from tests.conftest import POSTGRES_URL, service_missing
from tests.test_webhooks import SETTINGS, intercom_body, intercom_headers


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a frozen database, as a client sees it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _post(engine, settings=SETTINGS, body: bytes | None = None, signed: bool = True):
    client = create_app(settings, engine=engine).test_client()
    body = body or intercom_body("notif_outage")
    headers = intercom_headers(body) if signed else {"X-Hub-Signature": "sha1=0"}
    return client.post("/webhooks/intercom", data=body, headers=headers)


def _assert_503(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"].isdigit()
    assert response.mimetype == "application/json" and "unavailable" in response.get_json()["error"]


def test_a_stopped_database_gets_senders_a_503_with_retry_after():
    engine = create_engine(f"postgresql+psycopg://cse@127.0.0.1:{free_port()}/cse", connect_args={"connect_timeout": 3})
    _assert_503(_post(engine))
    _assert_503(_post(engine, signed=False))  # a refusal's log row cannot be written either


def test_a_frozen_database_gets_senders_a_503_instead_of_a_hang(silent_server):
    engine = create_engine(f"postgresql+psycopg://cse@127.0.0.1:{silent_server}/cse",
                           connect_args={"connect_timeout": 3})  # fmt: skip
    _assert_503(_post(engine, replace(SETTINGS, store_wait_seconds=0.3)))


def test_a_busy_sqlite_database_answers_503(tmp_path):
    import sqlite3

    engine = make_engine(f"sqlite:///{tmp_path / 'cse.db'}", statement_timeout=0.2)
    create_app(SETTINGS, engine=engine)
    from app.store.db import upgrade_schema

    upgrade_schema(engine)
    locker = sqlite3.connect(tmp_path / "cse.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        _assert_503(_post(engine))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert _post(engine).status_code == 204, "stored once the lock is gone"


def test_the_web_apps_postgresql_statements_have_a_timeout():
    engine = make_engine(POSTGRES_URL, statement_timeout=1.5)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW statement_timeout")) == "1500ms"
    except Exception as error:  # noqa: BLE001 - the service is missing
        if "statement_timeout" in str(error):
            raise
        service_missing("PostgreSQL at " + POSTGRES_URL, error)
    finally:
        engine.dispose()


def test_settings_keep_every_wait_below_gunicorns_timeout():
    from app.settings import Settings

    settings = Settings.from_env({})
    gunicorn_timeout = 30
    assert settings.db_statement_timeout_seconds < gunicorn_timeout
    assert settings.store_wait_seconds < gunicorn_timeout and settings.redis_timeout_seconds < gunicorn_timeout


def test_redis_clients_have_socket_timeouts_and_retry_on_a_dropped_connection():
    from app.queues import redis_connection

    settings = replace(SETTINGS, redis_url="redis://127.0.0.1:1/0", redis_timeout_seconds=2.5)
    kwargs = redis_connection(settings).connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 2.5 and kwargs["socket_connect_timeout"] == 2.5
    assert kwargs["health_check_interval"] > 0 and kwargs["retry"].get_retries() > 0
