"""`cse`: the command line of the Customer Success Engine."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import date, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from app.book_loader import load_book
from app.cli import ml, ops, sync, users
from app.ml.scorer import load_scoring_artifact
from app.report import band_table
from app.rescoring import rescore
from app.scoring import score_and_store
from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from engine.health_config import load_health_config
from engine.playbooks import load_playbooks

cli = typer.Typer(
    help="Customer Success Engine: score, grow and retain the accounts in your CRMs.", no_args_is_help=True
)
console = Console(stderr=True)

# The demo scores these days before "today" too, so the first look already shows 7- and 30-day trends.
DEMO_BACKFILL_DAYS = (30, 7)


def _progress(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet, transient=False,
    )  # fmt: skip


def _emit(summary: dict, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    Console().print(band_table(summary, title))
    for vendor, outcomes in summary.get("crms", {}).get("writeback", {}).items():
        done = ", ".join(f"{n:,} {op.split(':')[0].replace('_', ' ')}" for op, n in sorted(outcomes.items())
                         if op.endswith(":done"))  # fmt: skip
        problems = sum(n for op, n in outcomes.items() if not op.endswith(":done"))
        Console().print(
            f"{vendor}: {done or 'nothing written'}" + (f" ({problems:,} not delivered)" if problems else "")
        )


@cli.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the book by band as JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generated book (same seed, same book).")] = 7,
    accounts: Annotated[int, typer.Option(help="Active accounts in the book.")] = 2500,
    days: Annotated[int, typer.Option(help="Days of activity history.")] = 180,
    as_of: Annotated[str | None, typer.Option(help="Last day of the book (YYYY-MM-DD); default today.")] = None,
    crms: Annotated[bool, typer.Option(help="Run the CRM loop against the bundled sandboxes.")] = True,
) -> None:
    """Generate a book of business, load and score it, and write the scores back into the bundled CRM sandboxes."""
    from app.demo.book import BookSpec, generate_book
    from app.demo.crm_loop import bundled_crms, crm_settings, deliver_everything, link_companies

    settings = Settings.from_env()
    day = date.fromisoformat(as_of) if as_of else date.today()
    engine = make_engine(settings.database_url)
    config = load_health_config(settings.health_config)
    with _progress(as_json) as progress, ExitStack() as stack:
        task = progress.add_task("Preparing the store", total=1)
        upgrade_schema(engine)
        progress.update(task, completed=1)
        task = progress.add_task("Generating the book of business", total=1)
        book = generate_book(BookSpec(seed=seed, active_accounts=accounts, days=days, as_of=day))
        progress.update(task, completed=1)
        task = progress.add_task("Loading accounts and activity", total=len(book.events))
        load_book(engine, book.accounts, book.contacts, book.events, lambda n: progress.advance(task, n))
        if crms:
            task = progress.add_task("Linking the CRM sandboxes", total=1)
            settings = crm_settings(stack.enter_context(bundled_crms(book)))
            linked = link_companies(engine, settings, settings.data_dir / "sync-logs")
            progress.update(task, completed=1)
        task = progress.add_task("Scoring", total=len(DEMO_BACKFILL_DAYS) + 1)
        for back in DEMO_BACKFILL_DAYS:
            with engine.begin() as conn:
                score_and_store(conn, day - timedelta(days=back), config)
            progress.advance(task)
        artifact = load_scoring_artifact(settings.data_dir)
        result = rescore(engine, day, config, load_playbooks(settings.playbooks), settings.writeback_score_step,
                         artifact=artifact, chunk_size=settings.score_chunk_accounts)  # fmt: skip
        progress.advance(task)
        summary = result.totals.summary()
        if crms:
            task = progress.add_task("Writing back to the CRM sandboxes", total=1)
            summary["crms"] = {"linked": linked, "writeback": deliver_everything(engine, settings)}
            progress.update(task, completed=1)
    _emit(summary, as_json, f"Book of business on {day} (seed {seed})")


@cli.command()
def score(
    as_json: Annotated[bool, typer.Option("--json", help="Print the book by band as JSON.")] = False,
    as_of: Annotated[str | None, typer.Option(help="Score as of this day (YYYY-MM-DD); default today.")] = None,
    shards: Annotated[
        int, typer.Option(help="Split the run into N jobs for the `cse worker` processes (PostgreSQL and Redis only).")
    ] = 1,
) -> None:
    """Rescore every active account in the store."""
    settings = Settings.from_env()
    day = date.fromisoformat(as_of) if as_of else date.today()
    engine = make_engine(settings.database_url)
    if shards > 1:
        _emit(_score_sharded(settings, engine, day, shards), as_json, f"Book of business on {day} ({shards} shards)")
        return
    config = load_health_config(settings.health_config)
    playbooks = load_playbooks(settings.playbooks)
    with _progress(as_json) as progress:
        task = progress.add_task("Scoring", total=1)
        upgrade_schema(engine)
        artifact = load_scoring_artifact(settings.data_dir)
        result = rescore(engine, day, config, playbooks, settings.writeback_score_step, artifact=artifact,
                         chunk_size=settings.score_chunk_accounts)  # fmt: skip
        progress.update(task, completed=1)
    summary = result.totals.summary()
    summary["writeback"] = {"field_writes": result.field_writes, "new_actions": result.new_actions}
    _emit(summary, as_json, f"Book of business on {day}")


def _score_sharded(settings: Settings, engine, day: date, shards: int) -> dict:
    from app.shards import ShardingRefused, check_shardable, start_run, wait_for_run

    try:
        check_shardable(settings)
    except ShardingRefused as refusal:
        console.print(f"[red]{refusal}[/red]")
        raise typer.Exit(1) from None
    upgrade_schema(engine)
    return wait_for_run(engine, settings, start_run(engine, settings, day, shards))


ops.register(cli)
sync.register(cli)
ml.register(cli)
users.register(cli)


def main() -> None:
    cli()
