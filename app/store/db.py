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
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Bulk paths hand dates straight to the driver; store them in exactly the text form SQLAlchemy's SQLite types write
# (always with microseconds), or text comparisons against SQLAlchemy-bound values go wrong at whole seconds.
# Python 3.12 deprecates sqlite3's implicit adapters, so they are registered explicitly.
sqlite3.register_adapter(datetime, lambda value: value.replace(tzinfo=None).isoformat(" ", "microseconds"))
sqlite3.register_adapter(date, lambda value: value.isoformat())


def make_engine(database_url: str, **kwargs) -> Engine:
    """Create an engine; for SQLite make the file's folder, turn on WAL and foreign keys."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

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
