"""`cse sync` and `cse mappings ...`: pull the CRMs into the store, and inspect, validate and version mappings.

Registered on the main CLI with `register(cli)`; sources come from app/sources.py.
"""

from __future__ import annotations

import difflib
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from app.cli.failures import CommandFailed
from app.settings import Settings

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from app.sync import MappingVersionInfo, SyncLog

# The store, sync and mapping modules load inside the commands, so `cse --help` stays quick.

console = Console(stderr=True)
out = Console()
mappings_app = typer.Typer(help="Inspect, validate and version the field mappings (DESIGN §4).", no_args_is_help=True)


def mappings_dir() -> Path:
    """The mappings folder of this deployment (CSE_MAPPINGS_DIR through Settings)."""
    from app.sync.versions import mappings_dir_of

    return mappings_dir_of(Settings.from_env())


def build_sources(*args, **kwargs):
    """app.sources.build_sources, imported when a sync runs: the connectors and their SDKs are slow to load."""
    from app.sources import build_sources as build

    return build(*args, **kwargs)


def _engine(settings: Settings):
    from app.store.db import make_engine, upgrade_schema

    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    return engine


class _Bars:
    """One progress line per vendor object, counting records as pages arrive."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def __call__(self, vendor: str, obj: str, records: int, done: bool) -> None:
        key = (vendor, obj)
        if key not in self.tasks:
            if not self.progress.disable:  # a line of its own, so a log file or a pipe sees it as it starts too
                self.progress.console.print(f"{vendor} {obj}: pulling")
            self.tasks[key] = self.progress.add_task(f"{vendor} {obj}", total=None)
        self.progress.advance(self.tasks[key], records)
        if done:
            task = self.tasks[key]
            completed = self.progress.tasks[task].completed
            self.progress.update(task, total=completed or 1, completed=completed or 1)


def print_log(log: SyncLog, console_out: Console = out) -> None:
    """The run as a table, then the first quarantine reasons per object and where the full log is."""
    from rich.table import Table

    table = Table(title=f"Sync {'(full) ' if log.full else ''}{log.started_at:%Y-%m-%d %H:%M:%S} UTC")
    for column in ("vendor", "object", "pages", "records", "accounts", "contacts", "events", "deleted",
                   "quarantined", "API calls", "seconds", "error"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("vendor", "object", "error") else "right")
    for o in log.objects:
        table.add_row(
            o.vendor, o.object, str(o.pages), str(o.records), str(o.accounts), str(o.contacts), str(o.events),
            str(o.deleted), str(o.quarantined), str(o.api_calls), f"{o.duration_s:.1f}", o.error or "",
        )  # fmt: skip
    console_out.print(table)
    for o in log.objects:
        reasons = [r for r in o.reasons if "reason" in r]
        for r in reasons[:10]:
            console_out.print(f"  quarantined {o.vendor} {o.object} {r['external_id']}: {r['mapping']}: {r['reason']}")
        if o.quarantined > 10:
            console_out.print(f"  ... and {o.quarantined - 10} more {o.vendor} {o.object} records in quarantine")
    for error in log.errors:
        console_out.print(f"[red]{error}[/red]")
    console_out.print(f"{sum(log.api_calls.values())} API calls in {log.duration_s:.1f} s; log: {log.path}")


def sync_command(
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="Only this vendor (salesforce, hubspot, intercom, ...).")
    ] = None,  # noqa: E501
    full: Annotated[bool, typer.Option("--full", help="Ignore cursors and resync everything.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Pull accounts, contacts and activity from the CRMs into the store (incremental unless --full)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from app.sources import SourceUnavailable
    from app.sync import run_sync
    from app.sync.versions import load_active_mappings, mappings_dir_of
    from connectors.registry import vendor_names

    settings = Settings.from_env()
    engine = _engine(settings)
    try:
        mappings = load_active_mappings(settings, engine, list(vendor_names()))
        sources = build_sources(settings, vendor, engine, mappings)
    except SourceUnavailable as error:
        raise CommandFailed(f"cse sync: {error}", exit_code=2) from None
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:>8.0f} records"),
        TimeElapsedColumn(), console=console, disable=quiet,
    )  # fmt: skip
    with progress:
        log = run_sync(
            engine, sources, full=full, progress=_Bars(progress), mappings_dir=mappings_dir_of(settings),
            mappings=mappings,
            log_dir=settings.data_dir / "sync-logs",
        )  # fmt: skip
    print_log(log)
    if not log.ok:
        failed = [o for o in log.objects if o.error]
        first = f"; first: {failed[0].vendor} {failed[0].object}: {failed[0].error}" if failed else ""
        raise CommandFailed(f"cse sync: {len(failed)} object(s) failed{first}")


@mappings_app.command("validate")
def validate_command(
    path: Annotated[
        Path | None, typer.Argument(help="A mapping file or a folder (default: every shipped mapping).")
    ] = None,
) -> None:
    """Validate mapping files against the canonical schema; print file:line: field: message for each problem."""
    from app.ml.import_mapping import validate_import_files
    from connectors.mapping import IMPORT_KIND, mapping_files, validate_path

    path = path or mappings_dir()
    mappings, problems = validate_path(path)
    imports, import_problems = validate_import_files(mapping_files(path, IMPORT_KIND))
    problems += import_problems
    for problem in problems:
        typer.echo(str(problem))
    valid = f"{len(mappings)} mapping(s) valid, {len(imports)} import mapping(s) valid"
    if problems:
        typer.echo(f"{len(problems)} problem(s); {valid}", err=True)
        raise typer.Exit(1)
    typer.echo(valid)


def _names(conn, vendor: str, name_or_object: str) -> list[str]:
    """A mapping name, or every mapping of a vendor object (tickets -> tickets_opened, tickets_closed)."""
    from app.sync import active_mapping, mapping_names
    from connectors.mapping import MappingError

    names = mapping_names(conn, vendor, mappings_dir())
    if name_or_object in names:
        return [name_or_object]
    matching = []
    for name in names:
        try:
            if active_mapping(conn, vendor, name, mappings_dir()).object == name_or_object:
                matching.append(name)
        except MappingError:
            continue
    if not matching:
        console.print(f"[red]{vendor} has no mapping or mapped object {name_or_object!r} (mappings: {names})[/red]")
        raise typer.Exit(1)
    return matching


def _describe(info: MappingVersionInfo) -> str:
    when = f" at {info.created_at:%Y-%m-%d %H:%M:%S}" if info.created_at else ""
    return f"{info.vendor}/{info.name} v{info.version} ({info.origin}, by {info.author}{when})"


def _pick(versions: list[MappingVersionInfo], version: int | None, default_index: int) -> MappingVersionInfo:
    by_number = {v.version: v for v in versions}
    if version is None:
        return versions[default_index]
    if version not in by_number:
        console.print(f"[red]no version {version} (versions: {sorted(by_number)})[/red]")
        raise typer.Exit(1)
    return by_number[version]


@mappings_app.command("show")
def show_command(
    vendor: Annotated[str, typer.Argument(help="A vendor (salesforce, hubspot, intercom, ...).")],
    name: Annotated[str, typer.Argument(help="Mapping name (file stem) or vendor object.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="A past version; default the active one.")
    ] = None,  # noqa: E501
) -> None:
    """Print the active mapping (or a given version) of a vendor object."""
    from app.sync import mapping_versions

    engine = _engine(Settings.from_env())
    with engine.connect() as conn:
        for mapping_name in _names(conn, vendor, name):
            versions = mapping_versions(conn, vendor, mapping_name, mappings_dir())
            info = _pick(versions, version, -1)
            active = " [active]" if info is versions[-1] else ""
            typer.echo(f"# {_describe(info)}{active}")
            typer.echo(info.content.rstrip("\n"))


@mappings_app.command("diff")
def diff_command(
    vendor: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument(help="Mapping name (file stem) or vendor object.")],
    from_version: Annotated[int | None, typer.Option("--from", help="Default: the version before --to.")] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="Default: the active version.")] = None,
) -> None:
    """Unified diff between two versions of a mapping."""
    from app.sync import mapping_versions

    engine = _engine(Settings.from_env())
    with engine.connect() as conn:
        for mapping_name in _names(conn, vendor, name):
            versions = mapping_versions(conn, vendor, mapping_name, mappings_dir())
            new = _pick(versions, to_version, -1)
            position = versions.index(new)
            old = _pick(versions, from_version, max(position - 1, 0))
            lines = difflib.unified_diff(
                old.content.splitlines(keepends=True), new.content.splitlines(keepends=True),
                fromfile=_describe(old), tofile=_describe(new),
            )  # fmt: skip
            text = "".join(lines)
            typer.echo(text.rstrip("\n") if text else f"{vendor}/{mapping_name}: v{old.version} = v{new.version}")


@mappings_app.command("history")
def history_command(
    vendor: Annotated[str | None, typer.Argument()] = None,
    name: Annotated[str | None, typer.Argument(help="Mapping name (file stem).")] = None,
) -> None:
    """Every stored mapping version with its author and time (version 0 is the default file)."""
    from rich.table import Table

    from app.sync import mapping_history

    engine = _engine(Settings.from_env())
    with engine.connect() as conn:
        history = mapping_history(conn, vendor, name)
    table = Table(title="Mapping versions")
    for column in ("vendor", "mapping", "version", "author", "saved at (UTC)"):
        table.add_column(column)
    for info in history:
        table.add_row(info.vendor, info.name, str(info.version), info.author, f"{info.created_at:%Y-%m-%d %H:%M:%S}")
    out.print(table if history else "No stored versions: every mapping is its default file under mappings/.")


@mappings_app.command("save")
def save_command(
    path: Annotated[Path, typer.Argument(help="An edited mapping file; its vendor and file name say which mapping.")],
    author: Annotated[str | None, typer.Option(help="Who made the change (default: the OS user).")] = None,
    name: Annotated[str | None, typer.Option(help="Mapping name, if not the file name.")] = None,
) -> None:
    """Validate a mapping file and store it as the new active version."""
    from app.sync import save_mapping_version
    from connectors.mapping import MappingError, load_mapping

    try:
        mapping = load_mapping(path)
    except MappingError as error:
        for problem in error.problems:
            typer.echo(str(problem))
        raise typer.Exit(1) from None
    engine = _engine(Settings.from_env())
    with engine.begin() as conn:
        info = save_mapping_version(
            conn, mapping.vendor, name or mapping.name, mapping.content, author or getpass.getuser()
        )
    typer.echo(f"saved {_describe(info)}")


@mappings_app.command("rollback")
def rollback_command(
    vendor: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument(help="Mapping name (file stem).")],
    to: Annotated[int, typer.Option("--to", help="The version to make active again (0: the default file).")],
    author: Annotated[str | None, typer.Option(help="Who rolled back (default: the OS user).")] = None,
) -> None:
    """Make an older version active again, stored as a new version so the history stays complete."""
    from app.sync import rollback_mapping
    from connectors.mapping import MappingError

    engine = _engine(Settings.from_env())
    with engine.begin() as conn:
        try:
            info = rollback_mapping(conn, vendor, name, to, author or getpass.getuser(), mappings_dir())
        except (KeyError, MappingError) as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    typer.echo(f"rolled back: {_describe(info)} now active")


def register(cli: typer.Typer) -> None:
    """Add `cse sync` and the `cse mappings` group to the main CLI."""
    cli.command("sync")(sync_command)
    cli.add_typer(mappings_app, name="mappings")
