"""`cse migrate`: bring the store's schema up to date, once, before the web and worker processes start.

The Procfile runs it as the release step. Every process also upgrades at start under the store's migration lock
(app/store/db.py), so starting without the release step is safe too: concurrent starters wait instead of racing.
"""

from __future__ import annotations

import typer


def migrate() -> None:
    """Create or upgrade the store's tables (the Procfile's release step; safe to run at any time)."""
    from alembic.runtime.migration import MigrationContext

    from app.settings import Settings, mask_url_password
    from app.store.db import make_engine, upgrade_schema

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    typer.echo(f"{mask_url_password(settings.database_url)}: schema at revision {revision}")


def register(cli: typer.Typer) -> None:
    cli.command()(migrate)
