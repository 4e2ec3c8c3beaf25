"""Alembic environment: runs against the engine handed over by app.store.db (no alembic.ini needed)."""

from alembic import context
from sqlalchemy import create_engine

from app.store.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # batch migrations rebuild tables (copy, drop, rename): a drop must not cascade to other tables' rows
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction does this take effect
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
