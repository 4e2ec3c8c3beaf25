"""Engine creation and schema upgrades; the one place that knows SQLite and PostgreSQL differ."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Bulk paths hand dates straight to the driver; store them in exactly the text form SQLAlchemy's SQLite types write
# (always with microseconds), or text comparisons against SQLAlchemy-bound values go wrong at whole seconds.
# Python 3.12 deprecates sqlite3's implicit adapters, so they are registered explicitly.
sqlite3.register_adapter(datetime, lambda value: value.replace(tzinfo=None).isoformat(" ", "microseconds"))
sqlite3.register_adapter(date, lambda value: value.isoformat())


class StoreUnavailable(Exception):
    """The database did not answer (down, restarting, frozen past the wait): the caller should try again later."""


# What "the store is unavailable" looks like through SQLAlchemy: the server gone or refusing, a statement cancelled
# by its timeout, no pooled connection within the pool's wait. (Bugs — integrity, programming errors — are not.)
STORE_DOWN = (StoreUnavailable, exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


def make_engine(database_url: str, statement_timeout: float | None = None, connect_timeout: int = 5,
                **kwargs) -> Engine:  # fmt: skip
    """Create an engine whose waits are bounded: `connect_timeout` seconds to connect (and to get a pooled
    connection), TCP keepalives so a dead server is noticed, and on PostgreSQL a `statement_timeout` when given
    (the web app's, below gunicorn's worker timeout; jobs may run long statements). On SQLite the busy timeout is
    `statement_timeout` (30 s without); the file's folder is made, WAL and foreign keys turned on."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        connect_args = {"connect_timeout": connect_timeout, "keepalives": 1, "keepalives_idle": 10,
                        "keepalives_interval": 5, "keepalives_count": 3}  # fmt: skip
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs.setdefault("pool_timeout", connect_timeout)
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
        if statement_timeout:  # per connection, leaving the URL's own `options` (a search_path) alone

            @event.listens_for(engine, "connect")
            def _statement_timeout(dbapi_conn, _record) -> None:
                with dbapi_conn.cursor() as cursor:
                    cursor.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
                dbapi_conn.commit()

        return engine
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": statement_timeout or 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def schema_xact_lock(conn, key: int, shared: bool = False) -> None:
    """Take PostgreSQL's transaction-scoped advisory lock `key` (exclusive, or `shared`) until the transaction ends,
    keyed by the schema too: stores in two schemas of one database (tests, throwaways) never wait on each other."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.execute(text(f"SELECT {function}(CAST(:key AS integer), hashtext(current_schema()))"), {"key": key})


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the store's migration lock: concurrent starters (gunicorn workers, a worker beside the web) wait here.

    PostgreSQL: a session advisory lock keyed by the schema, so throwaway schemas do not wait on each other.
    SQLite: an exclusive lock on a file next to the database. An in-memory database has one user and no lock.
    """
    if is_postgres(engine):
        with engine.connect() as conn:
            key = "SELECT hashtext('cse-migrate:' || current_schema())"
            conn.execute(text(f"SELECT pg_advisory_lock(({key}))"))
            try:
                yield
            finally:
                conn.execute(text(f"SELECT pg_advisory_unlock(({key}))"))
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the latest migration; safe to call at every start, from many processes at once."""
    with migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
