"""Operating commands: workers, the scheduler, write-back dispatch and the outbox's state."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import func, select

from app.queues import ALL_QUEUES, redis_connection
from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.store.models import OutboxRow


def register(cli: typer.Typer) -> None:
    cli.command()(connect)
    cli.command()(worker)
    cli.command()(scheduler)
    cli.command()(writeback)
    cli.command()(outbox)


def _redis_settings() -> Settings:
    settings = Settings.from_env()
    if not settings.redis_url:
        raise typer.BadParameter("REDIS_URL is not set: without Redis, jobs run in-process and need no worker")
    return settings


def connect(
    vendor: Annotated[str, typer.Argument(help="salesforce, hubspot or intercom")],
    install_fields: Annotated[
        bool, typer.Option("--install-fields", help="Create our fields where the API can.")
    ] = False,
) -> None:
    """Check the connection and that the CRM holds every field write-back writes (creating them if asked)."""
    import importlib

    from app.sync import active_mapping
    from app.writeback.jobs import PUSH_MAPPINGS, pusher_for

    if vendor not in PUSH_MAPPINGS:
        raise typer.BadParameter(f"unknown vendor {vendor!r}; one of {', '.join(PUSH_MAPPINGS)}")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        mapping = active_mapping(conn, vendor, PUSH_MAPPINGS[vendor])
    fields = importlib.import_module(f"connectors.{vendor}.fields")
    client = pusher_for(settings, vendor).client
    if install_fields and hasattr(fields, "install_fields"):
        for name in fields.install_fields(client, mapping):
            typer.echo(f"created {name}")
    missing = fields.missing_fields(client, mapping)
    for obj, names in sorted(missing.items()):
        typer.echo(f"missing on {obj}: {', '.join(sorted(names))}", err=True)
    if missing and vendor == "salesforce":
        typer.echo(f"deploy the metadata in {fields.METADATA_DIR} (Salesforce's API cannot create fields)", err=True)
    if missing:
        raise typer.Exit(1)
    typer.echo(f"{vendor}: connected; every field of {mapping.file} is in place")


def worker(
    queues: Annotated[list[str] | None, typer.Argument(help="Queues to listen on (default: all).")] = None,
    burst: Annotated[bool, typer.Option(help="Quit when the queues are empty.")] = False,
) -> None:
    """Run an RQ worker on our queues, taking them round-robin so no vendor's backlog starves the others.

    Jobs run in the worker process itself (SimpleWorker), so its database engine, vendor sessions and loaded
    SDKs serve every job; forking a fresh process per job cost more than the delivery. A job that kills the
    worker loses nothing: its rows stay `enqueued` until the sweeper hands them out again.
    """
    from rq import SimpleWorker
    from rq.worker import DequeueStrategy

    settings = _redis_settings()
    upgrade_schema(make_engine(settings.database_url))
    connection = redis_connection(settings)

    # with_scheduler: the coalesced webhook processing is enqueued to run a moment later (enqueue_in).
    SimpleWorker(list(queues or ALL_QUEUES), connection=connection).work(
        burst=burst, dequeue_strategy=DequeueStrategy.ROUND_ROBIN, with_scheduler=True
    )


def scheduler() -> None:
    """Enqueue the periodic jobs (dispatch, sweep, webhooks left waiting, due campaign steps, nightly rescoring)."""
    from rq.cron import CronScheduler

    from app.jobs import SCHEDULE

    settings = _redis_settings()
    cron = CronScheduler(connection=redis_connection(settings))
    for job, queue, interval, expression in SCHEDULE:
        cron.register(job, queue, interval=interval, cron=expression)
    cron.start()


def writeback() -> None:
    """Dispatch pending outbox rows now (delivered at once when there is no Redis)."""
    from app.jobs import dispatch_job

    typer.echo(f"{dispatch_job()} delivery job(s) enqueued")


def outbox(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Outbox rows per vendor and status, and the parked rows' errors."""
    engine = make_engine(Settings.from_env().database_url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        counts = conn.execute(
            select(OutboxRow.vendor, OutboxRow.status, func.count()).group_by(OutboxRow.vendor, OutboxRow.status)
        ).all()
        parked = conn.execute(
            select(OutboxRow.id, OutboxRow.vendor, OutboxRow.operation, OutboxRow.last_error)
            .where(OutboxRow.status == "parked")
            .order_by(OutboxRow.id.desc())
            .limit(50)
        ).all()
    summary = {
        "counts": [{"vendor": v, "status": s, "rows": n} for v, s, n in counts],
        "parked": [{"id": i, "vendor": v, "operation": o, "error": e} for i, v, o, e in parked],
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for row in summary["counts"]:
        typer.echo(f"{row['vendor']:<12} {row['status']:<12} {row['rows']:>8}")
    for row in summary["parked"]:
        typer.echo(f"parked #{row['id']} {row['vendor']} {row['operation']}: {row['error']}")
