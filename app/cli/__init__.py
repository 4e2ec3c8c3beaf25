"""`cse`: the command line of the Customer Success Engine."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from app.cli import accounts as accounts_cli
from app.cli import migrate, ml, ops, sync, users
from app.cli import programs as programs_cli
from app.cli.failures import CommandFailed, FriendlyGroup, parse_day

if TYPE_CHECKING:
    from rich.progress import Progress

    from app.ml.auto import ScoringModels
    from app.settings import Settings

# Heavy modules (pandas, SQLAlchemy, the engine, the SDKs) are imported inside the commands that use them, so
# `cse --help` and a mistyped command answer at once.
cli = typer.Typer(
    help="Customer Success Engine: score, grow and retain the accounts in your CRMs.",
    no_args_is_help=True,
    cls=FriendlyGroup,
    # Plain help and tracebacks: rich's help formatter and traceback pretty-printer cost more to import than all
    # of the CLI's own modules.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@cli.callback()
def _options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of a failure.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


# The demo scores these days before "today" too, so the first look already shows 7- and 30-day trends.
DEMO_BACKFILL_DAYS = (30, 7)
# The demo's book: 1,000 active accounts (~1,850 over the year with the churned ones, ~935,000 events). Every phase
# grows with the accounts; at 1,000 the early warning still has ~65 churners to be judged on (lead ~74 days, ~10 %
# false alarms) while 500 pushes its false alarms past 25 %. The generator's reference book stays 2,500 (BookSpec).
DEMO_ACCOUNTS = 1000


def _progress(quiet: bool) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet, transient=False,
    )  # fmt: skip


def _emit(summary: dict, as_json: bool, title: str) -> None:
    from app.report import band_table

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
    accounts: Annotated[int, typer.Option(help="Active accounts in the book.")] = DEMO_ACCOUNTS,
    days: Annotated[
        int, typer.Option(help="Days of activity history (a year: what a 90-day early-warning model needs).")
    ] = 365,
    as_of: Annotated[str | None, typer.Option(help="Last day of the book (YYYY-MM-DD); default today.")] = None,
    crms: Annotated[bool, typer.Option(help="Run the CRM loop against the bundled sandboxes.")] = True,
) -> None:
    """Generate a book of business, load and score it, and write the scores back into the bundled CRM sandboxes."""
    started = time.perf_counter()  # the imports below (pandas, scikit-learn, the store) are the demo's time too
    from app.account_views import actions_by_kind, top_at_risk
    from app.book_loader import load_book
    from app.demo.book import BookSpec, generate_book
    from app.demo.crm_loop import bundled_crms, crm_settings, deliver_everything, link_companies, linked_companies
    from app.demo.programs import run_demo_programs
    from app.ml.auto import models_for
    from app.ml.workers import warm_up
    from app.programs.definitions import load_programs
    from app.programs.tick import Limits
    from app.scoring import score_and_store
    from app.settings import Settings
    from app.store.db import make_engine, upgrade_schema
    from engine.health_config import load_health_config

    warm_up()  # the model refresh's worker processes import their code while the book is generated and loaded
    phases: dict[str, float] = {}
    settings = Settings.from_env()
    day = parse_day(as_of)
    engine = make_engine(settings.database_url)
    config = load_health_config(settings.health_config)
    with _progress(as_json) as progress, ExitStack() as stack:
        task = progress.add_task("Preparing the store", total=1)
        upgrade_schema(engine)
        progress.update(task, completed=1)
        task = progress.add_task("Generating the book of business", total=1)
        book = _timed_call(phases, "generate", generate_book,
                           BookSpec(seed=seed, active_accounts=accounts, days=days, as_of=day))  # fmt: skip
        progress.update(task, completed=1)
        # The sandboxes are seeded (pure Python) while the store loads the book (mostly SQLite, which runs
        # without the GIL): the two halves share nothing until the link sync.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandboxes") as pool:
            if crms:
                task = progress.add_task("Starting the CRM sandboxes", total=1)
                seeding = pool.submit(_timed_call, phases, "sandboxes", stack.enter_context, bundled_crms(book))
                seeding.add_done_callback(lambda _, task=task: progress.update(task, completed=1))
            task = progress.add_task("Loading accounts and activity", total=len(book.events))
            _timed_call(phases, "load", load_book, engine, book.accounts, book.contacts, book.events,
                        lambda n: progress.advance(task, n))  # fmt: skip
            sandbox_env = seeding.result() if crms else {}
        # The models learn from the loaded history on their worker processes while this process links the CRMs
        # and backfills past days (~2 s of one core, the other idle). They learn what they would after the link:
        # it adds links and changes no value the models read, because the sandboxes hold the book's records
        # exactly (tests/test_sync_sandboxes.py); the backfill writes scores, which they do not read.
        task = progress.add_task("Refreshing the churn and expansion models", total=1)
        background = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="models"))
        refreshing = background.submit(_timed_call, phases, "models", models_for, settings, engine, config)
        refreshing.add_done_callback(lambda _, task=task: progress.update(task, completed=1))
        if crms:
            task = progress.add_task("Linking the CRM sandboxes", total=1)
            settings = crm_settings(sandbox_env)
            _timed_call(phases, "link", link_companies, engine, settings, settings.data_dir / "sync-logs")
            progress.update(task, completed=1)
        task = progress.add_task("Scoring", total=len(DEMO_BACKFILL_DAYS) + 1)
        for back in DEMO_BACKFILL_DAYS:
            with engine.begin() as conn:
                _timed_call(phases, "score_backfill", score_and_store, conn, day - timedelta(days=back), config)
            progress.advance(task)
        # The book's last day is the demo's today: its scores are written back (the backfilled days are not).
        programs = load_programs(settings, engine)
        result, models = _timed_call(phases, "score", _rescore, settings, engine, day, write_back=True,
                                     programs=programs, models=refreshing.result())  # fmt: skip
        progress.advance(task)
        summary = result.totals.summary()
        from app.risk_summary import risk_summary

        summary.update(risk_summary(result.totals, models))
        if crms:
            task = progress.add_task("Writing back to the CRM sandboxes", total=1)
            writeback = _timed_call(phases, "writeback", deliver_everything, engine, settings)
            summary["crms"] = {"linked": linked_companies(engine), "writeback": writeback}
            progress.update(task, completed=1)
        # After the write-back, so the demo's CRM half stays as quick as before: the program steps the simulated
        # weeks send wait in the outbox for `cse writeback`.
        task = progress.add_task("Running the programs (simulated weeks)", total=1)
        summary["programs"], summary["onboarding"] = _timed_call(
            phases,
            "programs",
            run_demo_programs,
            engine,
            programs,
            day,
            Limits(settings.messages_per_week, settings.task_budget_per_csm),
            seed,
            book.accounts.set_index("key")["latent_churn_date"],
        )
        progress.update(task, completed=1)
    with engine.connect() as conn:
        summary["top_at_risk"] = top_at_risk(conn)
        summary["actions_by_kind"] = actions_by_kind(conn)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["phase_seconds"] = {name: round(seconds, 1) for name, seconds in phases.items()}
    _emit(summary, as_json, f"Book of business on {day} (seed {seed})")
    if not as_json:
        from app.cli.programs import load_line, reach_line

        accounts_cli.print_at_risk(summary["top_at_risk"], summary["actions_by_kind"])
        Console().print(reach_line(summary["programs"]["churn_reach"], "churning in the next"))
        Console().print(load_line(summary["programs"]["csm_tasks"]))
        Console().print(f"Demo finished in {summary['wall_seconds']:.1f} s (wall time, sandboxes stopped)")


def _timed_call(phases: dict[str, float], name: str, call, *args, **kwargs):
    """`call(*args, **kwargs)`, adding its wall seconds to `phases[name]` (the demo's breakdown in --json)."""
    started = time.perf_counter()
    try:
        return call(*args, **kwargs)
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def _rescore(
    settings: Settings, engine, day: date, write_back: bool, programs=None, models: ScoringModels | None = None
):
    """Score with `models`, by default the store's, refreshed first when due (app.ml.auto); returns the run and
    the models it scored with."""
    from app.ml.auto import models_for
    from app.rescoring import rescore
    from engine.health_config import load_health_config

    config = load_health_config(settings.health_config)
    models = models or models_for(settings, engine, config)
    result = rescore(
        engine, day, config, settings.writeback_score_step,
        artifact=models.artifact, chunk_size=settings.score_chunk_accounts, calibration=models.calibration,
        write_back=write_back, programs=programs, parts=settings.score_parts,
    )  # fmt: skip
    return result, models


@cli.command()
def score(
    as_json: Annotated[bool, typer.Option("--json", help="Print the book by band as JSON.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(help="Score as of this day (YYYY-MM-DD); default today. Another day stores scores only."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Store and report the scores; plan no CRM write or customer contact.")
    ] = False,
    shards: Annotated[
        int, typer.Option(help="Split the run into N jobs for the `cse worker` processes (PostgreSQL and Redis only).")
    ] = 1,
    data: Annotated[str | None, typer.Option(help="Score a history import's accounts with a history model.")] = None,
    horizon: Annotated[int | None, typer.Option(help="With --data: the model's horizon (checked).", min=1)] = None,
    model: Annotated[str | None, typer.Option(help="With --data: a model version (default the latest).")] = None,
) -> None:
    """Rescore every active account in the store (and, for today, plan the write-back and enter the accounts in the
    programs), or with --data a history import's accounts."""
    if data:
        from app.cli.history import score_history_command

        score_history_command(data, horizon, model, as_json)
        return

    day = parse_day(as_of)  # a mistyped day is told at once, before the scoring stack (scikit-learn) loads
    from app.rescoring import plans_write_back
    from app.settings import Settings
    from app.store.db import make_engine, upgrade_schema

    settings = Settings.from_env()
    write_back = plans_write_back(day, dry_run)
    engine = make_engine(settings.database_url)
    if shards > 1:
        if not write_back:
            raise CommandFailed("--shards runs today's scoring only: run a backfill or a dry run without --shards")
        _emit(_score_sharded(settings, engine, day, shards), as_json, f"Book of business on {day} ({shards} shards)")
        return
    with _progress(as_json) as progress:
        task = progress.add_task("Scoring", total=1)
        upgrade_schema(engine)
        from app.programs.definitions import load_programs

        result, models = _rescore(settings, engine, day, write_back, programs=load_programs(settings, engine))
        progress.update(task, completed=1)
    if not result.accounts:
        raise CommandFailed(
            f"no active accounts in the store on {day}: connect a CRM and run `cse sync` first (or try `cse demo`)"
        )
    summary = result.totals.summary()
    from app.risk_summary import risk_summary

    summary.update(risk_summary(result.totals, models))
    summary["writeback"] = {"field_writes": result.field_writes, "new_actions": result.new_actions,
                            "planned": write_back}  # fmt: skip
    if not write_back:
        reason = "a dry run" if dry_run else f"{day} is not today"
        summary["writeback"]["skipped"] = f"{reason}: scores stored, no CRM write or customer contact planned"
        console.print(f"[yellow]{summary['writeback']['skipped']}[/yellow]")
    _emit(summary, as_json, f"Book of business on {day}")


def _score_sharded(settings: Settings, engine, day: date, shards: int) -> dict:
    from app.shards import ShardingRefused, check_shardable, run_totals, start_run, wait_for_run
    from app.store.db import upgrade_schema

    try:
        check_shardable(settings)
    except ShardingRefused as refusal:
        raise CommandFailed(str(refusal)) from None
    from app.ml.auto import models_for
    from engine.health_config import load_health_config

    upgrade_schema(engine)
    models = models_for(settings, engine, load_health_config(settings.health_config))  # the shards load them
    run_id = start_run(engine, settings, day, shards)
    summary = wait_for_run(engine, settings, run_id)
    from app.risk_summary import risk_summary

    summary.update(risk_summary(run_totals(engine, run_id), models))
    return summary


migrate.register(cli)
accounts_cli.register(cli)
ops.register(cli)
sync.register(cli)
ml.register(cli)
programs_cli.register(cli)
users.register(cli)


def main() -> None:
    cli()
