"""Operating commands: workers, the scheduler, write-back dispatch and the outbox's state."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cli.failures import CommandFailed
from app.settings import Settings

# The store, queue and vendor modules load inside the commands, so `cse --help` stays quick.


def register(cli: typer.Typer) -> None:
    cli.command()(connect)
    cli.command()(worker)
    cli.command()(scheduler)
    cli.command()(writeback)
    cli.command()(outbox)


def _redis_settings() -> Settings:
    settings = Settings.from_env()
    if not settings.redis_url:
        raise CommandFailed("REDIS_URL is not set: without Redis, jobs run in-process and need no worker")
    return settings


def connect(
    vendor: Annotated[str, typer.Argument(help="A vendor (salesforce, hubspot, intercom, ...).")],
    install_fields: Annotated[
        bool, typer.Option("--install-fields", help="Create our fields where the API can.")
    ] = False,
) -> None:
    """Check the connection and that the CRM holds every field write-back writes (creating them if asked)."""
    from app.store.db import make_engine, upgrade_schema
    from app.sync.versions import active_mapping, mappings_dir_of
    from app.writeback.jobs import pusher_for
    from connectors.registry import connector as connector_of

    try:
        record = connector_of(vendor)
    except LookupError as error:
        raise typer.BadParameter(str(error)) from None
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        mapping = active_mapping(conn, vendor, record.push_mapping, mappings_dir_of(settings))
    fields = record.fields_module()
    client = pusher_for(settings, vendor).client
    if install_fields and hasattr(fields, "install_fields"):
        for name in fields.install_fields(client, mapping):
            typer.echo(f"created {name}")
    missing = fields.missing_fields(client, mapping)
    for obj, names in sorted(missing.items()):
        typer.echo(f"missing on {obj}: {', '.join(sorted(names))}", err=True)
    if missing and hasattr(fields, "MISSING_FIELDS_HELP"):
        typer.echo(fields.MISSING_FIELDS_HELP, err=True)
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
    from rq.worker import DequeueStrategy

    from app.queues import all_queues, redis_connection
    from app.store.db import make_engine, upgrade_schema
    from app.supervision import SupervisedWorker, log_to_stderr, stop_asked, supervise

    log_to_stderr()
    settings = _redis_settings()
    upgrade_schema(make_engine(settings.database_url))

    def run() -> bool:
        # with_scheduler: the coalesced webhook processing is enqueued to run a moment later (enqueue_in).
        rq_worker = SupervisedWorker(list(queues or all_queues()), redis_connection(settings),
                                     block_seconds=settings.redis_timeout_seconds)  # fmt: skip
        rq_worker.work(burst=burst, dequeue_strategy=DequeueStrategy.ROUND_ROBIN, with_scheduler=True)
        return burst or stop_asked()

    supervise(run, "the worker")


def scheduler() -> None:
    """Enqueue the periodic jobs (dispatch, sweep, webhooks left waiting, due campaign steps, nightly rescoring,
    the incremental sync); restarted with a backoff when Redis goes away (app/supervision.py)."""
    from app.jobs import SCHEDULE
    from app.queues import redis_connection
    from app.supervision import SupervisedCron, log_to_stderr, supervise

    log_to_stderr()
    settings = _redis_settings()

    def run() -> bool:
        cron = SupervisedCron(connection=redis_connection(settings))
        for job, queue, interval, expression in SCHEDULE:
            cron.register(job, queue, interval=interval, cron=expression)
        cron.start()  # returns only when asked to stop; a Redis error propagates
        return True

    supervise(run, "the scheduler")


def writeback() -> None:
    """Dispatch pending outbox rows now (delivered at once when there is no Redis).

    Rows for a vendor without credentials stay `pending` (never handed to a job that cannot run) and the command
    says which settings are missing, with a non-zero exit.
    """
    from sqlalchemy import func, select

    from app.jobs import dispatch_job
    from app.store.db import make_engine, upgrade_schema
    from app.store.models import OutboxRow
    from connectors.registry import all_connectors

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        waiting = dict(
            conn.execute(
                select(OutboxRow.vendor, func.count()).where(OutboxRow.status == "pending").group_by(OutboxRow.vendor)
            ).all()
        )
    ready = [c.name for c in all_connectors() if c.configured(settings)]
    typer.echo(f"{dispatch_job(ready)} delivery job(s) enqueued")
    unconfigured = {vendor: rows for vendor, rows in waiting.items() if vendor not in ready}
    if unconfigured:
        names = ", ".join(f"{vendor} ({rows:,} rows)" for vendor, rows in sorted(unconfigured.items()))
        raise CommandFailed(
            f"not delivered, no credentials: {names}; set them (see 'Connect your CRMs' in the README) and run again"
        )


def outbox(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Outbox rows per vendor and status, and the parked rows' errors."""
    from sqlalchemy import func, select

    from app.store.db import make_engine, upgrade_schema
    from app.store.models import OutboxRow

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
