"""`cse programs validate | list | show | history | save | report | tick | referral`: definitions and outcomes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema

programs_cli = typer.Typer(help="Programs: stateful campaigns with dated steps, exits and a control group.",
                           no_args_is_help=True)  # fmt: skip


def register(cli: typer.Typer) -> None:
    cli.add_typer(programs_cli, name="programs")


def _engine(settings: Settings):
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    return engine


@programs_cli.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Program files; default: the programs folder.")] = None,
) -> None:
    """Check program files (schema, conditions, templates, customer-facing wording); problems as file:line: field."""
    from app.programs.definitions import programs_dir_of
    from engine.programs.definition import ProgramError, parse_program, program_files

    files = paths or list(program_files(programs_dir_of(Settings.from_env())).values())
    problems = []
    for path in files:
        try:
            parse_program(path.read_text(encoding="utf-8"), str(path))
        except ProgramError as error:
            problems += error.problems
        except OSError as error:
            problems.append(f"{path}: {error}")
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} program file(s) valid")


@programs_cli.command("list")
def list_programs() -> None:
    """The active programs: name, version, entry condition, steps, holdout."""
    from app.programs.definitions import load_programs

    settings = Settings.from_env()
    for name, active in load_programs(settings, _engine(settings)).items():
        program = active.program
        typer.echo(f"{name}  v{active.version}  {len(program.steps)} steps  holdout {program.holdout:.0%}  "
                   f"entry: {program.entry}")  # fmt: skip


@programs_cli.command()
def show(name: Annotated[str, typer.Argument(help="A program name.")]) -> None:
    """The active version's text."""
    from app.programs.definitions import program_versions, programs_dir_of

    settings = Settings.from_env()
    with _engine(settings).connect() as conn:
        versions = program_versions(conn, name, programs_dir_of(settings))
    if not versions:
        raise typer.BadParameter(f"no program named {name!r}")
    typer.echo(versions[-1].content)


@programs_cli.command()
def history(name: Annotated[str, typer.Argument(help="A program name.")]) -> None:
    """Every version of a program with its author and time (version 0 is the file)."""
    from app.programs.definitions import program_versions, programs_dir_of

    settings = Settings.from_env()
    with _engine(settings).connect() as conn:
        for info in program_versions(conn, name, programs_dir_of(settings)):
            when = info.created_at.isoformat(timespec="seconds") if info.created_at else "-"
            typer.echo(f"v{info.version}  {when}  {info.author}")


@programs_cli.command()
def save(
    name: Annotated[str, typer.Argument(help="A program name.")],
    path: Annotated[Path, typer.Argument(help="The new version's file.")],
    author: Annotated[str, typer.Option(help="Who made the change.")],
) -> None:
    """Validate a file and store it as the program's new active version."""
    from app.programs.definitions import save_program_version
    from engine.programs.definition import ProgramError

    settings = Settings.from_env()
    try:
        with _engine(settings).begin() as conn:
            info = save_program_version(conn, name, path.read_text(encoding="utf-8"), author)
    except ProgramError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{name} v{info.version} saved by {author}")


@programs_cli.command()
def tick() -> None:
    """Run one program tick now (what the scheduler does every 15 minutes)."""
    from app.jobs import program_tick_job

    typer.echo(json.dumps(program_tick_job()))


@programs_cli.command()
def referral(
    referrer: Annotated[str, typer.Option(help="The referring account: its key, domain or name.")],
    company: Annotated[str, typer.Option(help="The referred company's name.")],
    domain: Annotated[str | None, typer.Option(help="The referred company's web domain (matched first).")] = None,
    program: Annotated[str | None, typer.Option(help="The program that asked for it, e.g. advocacy.")] = None,
) -> None:
    """Record a referral with its referrer; once the referred company is an account, its ARR is attributed to the
    referrer and the program (shown by `cse programs report`)."""
    from app.programs.referrals import attribute_referrals, find_account, record_referral

    settings = Settings.from_env()
    engine = _engine(settings)
    now = datetime.now()
    with engine.begin() as conn:
        referrer_id = find_account(conn, referrer)
        if referrer_id is None:
            typer.echo(f"no account matches {referrer!r} (by key, domain or name)", err=True)
            raise typer.Exit(1)
        new = record_referral(conn, referrer_id, name=company, domain=domain, program=program, now=now)
        attributed = attribute_referrals(conn, now)
    typer.echo(f"referral {'recorded' if new else 'already recorded'}; {attributed} attributed now")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}" if value < 0 or value > 0 else "0.0%"


@programs_cli.command()
def report(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Per program and step: entered, active, completed, exited by reason, success rate, uplift against the control
    group with its 95 % interval, revenue protected and expansion won; the onboarding milestone funnel."""
    from app.programs.definitions import load_programs
    from app.programs.report import (
        churn_reach,
        churned_recently,
        csm_task_load,
        milestone_funnel,
        programs_report,
    )

    settings = Settings.from_env()
    engine = _engine(settings)
    now = datetime.now()
    with engine.connect() as conn:
        body = {
            "programs": programs_report(conn, load_programs(settings, engine)),
            "onboarding_milestones": milestone_funnel(conn),
            "churn_reach": churn_reach(conn, churned_recently(conn, now.date())),
            "csm_tasks": csm_task_load(conn, now - timedelta(weeks=LOAD_WEEKS), settings.task_budget_per_csm),
            "generated_at": now.isoformat(),
        }
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for name, figures in body["programs"].items():
        up = figures["uplift"]
        interval = "" if up["low"] is None else f" [{up['low']:+.1%}, {up['high']:+.1%}]"
        rate = "-" if figures["success_rate"] is None else f"{figures['success_rate']:.1%}"
        typer.echo(f"{name}: entered {figures['entered']:,}, active {figures['active']:,}, completed "
                   f"{figures['completed']:,}, exited {figures['exited']}, control {figures['control']:,}")  # fmt: skip
        typer.echo(f"  success {rate}, uplift {_percent(up['uplift'])}{interval}"
                   f"{' significant' if up['significant'] else ' not significant'}, revenue protected "
                   f"{figures['revenue_protected']:,.0f}, expansion won {figures['expansion_won']:,.0f}")  # fmt: skip
        if figures["referral_revenue"]["referrals"]:
            ref = figures["referral_revenue"]
            typer.echo(f"  referrals {ref['referrals']:,}, became customers {ref['converted']:,}, referral revenue "
                       f"{ref['revenue']:,.0f}")  # fmt: skip
        for step, kinds in sorted(figures["steps"].items()):
            typer.echo(f"    {step}: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())))
    if body["onboarding_milestones"]:
        typer.echo(
            "onboarding milestones: " + ", ".join(f"{m} {n:,}" for m, n in body["onboarding_milestones"].items())
        )
    typer.echo(reach_line(body["churn_reach"], "churned in the last"))
    typer.echo(load_line(body["csm_tasks"]))


LOAD_WEEKS = 4  # `cse programs report` shows the CSM task load of the last four weeks


def reach_line(reach: dict, which: str) -> str:
    """One line: how many of the accounts that churn(ed) a program step reached, against the 90 % target."""
    if not reach["churned"]:
        return f"churn reach: no account {which} {reach['window_days']} days"
    return (f"churn reach: {reach['reached']:,} of {reach['churned']:,} accounts {which} {reach['window_days']} days "
            f"reached by a program step ({reach['reached_share']:.1%}, target {reach['target']:.0%}: "
            f"{'met' if reach['met'] else 'NOT met'}); by a CSM task {reach['reached_by_csm_share']:.1%}; not reached "
            f"but in a control group {reach['unreached_in_a_control_group']:,}")  # fmt: skip


def load_line(load: dict) -> str:
    """One line: CRM tasks per CSM and week against the weekly budget."""
    return (f"CSM tasks per week: at most {load['max']:,}, mean {load['mean']:,} over {load['csm_weeks']:,} CSM-weeks "
            f"(budget {load['budget']:,}: {'within' if load['within_budget'] else 'OVER'})")  # fmt: skip
