"""`cse accounts` and `cse account`: the book and one account from the command line, as tables or JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from app.cli.failures import CommandFailed

out = Console()
SORT_CHOICES = ("risk", "health", "arr", "expansion", "name")


def _engine():
    from app.settings import Settings
    from app.store.db import make_engine, upgrade_schema

    engine = make_engine(Settings.from_env().database_url)
    upgrade_schema(engine)
    return engine


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def accounts(
    band: Annotated[str | None, typer.Option(help="Only this band (healthy, at_risk, critical, churning).")] = None,
    segment: Annotated[str | None, typer.Option(help="Only this segment.")] = None,
    csm: Annotated[str | None, typer.Option(help="Only the accounts this CSM owns.")] = None,
    sort: Annotated[str, typer.Option(help=f"Order: {', '.join(SORT_CHOICES)}.")] = "risk",
    limit: Annotated[int, typer.Option(help="At most this many accounts.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """The accounts with their latest health, band, churn risk and expansion, riskiest first by default."""
    from rich.table import Table

    from app.account_views import list_accounts

    if sort not in SORT_CHOICES:
        raise CommandFailed(f"--sort {sort}: choose one of {', '.join(SORT_CHOICES)}", exit_code=2)
    with _engine().connect() as conn:
        rows = list_accounts(conn, band, segment, csm, sort, limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise CommandFailed("no scored accounts match: run `cse sync` and `cse score` first, or loosen the filters")
    table = Table(title="Accounts")
    for column in ("id", "name", "csm", "segment", "band", "health", "7d", "churn risk", "expansion", "top driver"):
        table.add_column(column, justify="right" if column in ("id", "health", "7d", "churn risk") else "left",
                         no_wrap=True, overflow="ellipsis")  # fmt: skip
    for r in rows:
        table.add_row(
            str(r["id"]), r["name"], r["csm"] or "", r["segment"] or "", r["band"] or "", f"{r['health']:.1f}",
            "" if r["trend_7d"] is None else f"{r['trend_7d']:+.1f}", _pct(r["churn_probability"]),
            r["expansion_type"] or "", r["drivers"][0] if r["drivers"] else "",
        )  # fmt: skip
    out.print(table)


def account(
    id_or_name: Annotated[str, typer.Argument(help="The account's id or name (a part of the name is enough).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the account as JSON.")] = False,
) -> None:
    """One account: health, factors, trend, drivers, churn risk, expansion, and the actions planned and delivered."""
    from app.account_views import account_view, find_account

    with _engine().connect() as conn:
        matches = find_account(conn, id_or_name)
        if not matches:
            raise CommandFailed(f"no account {id_or_name!r}: `cse accounts` lists them with their ids")
        if len(matches) > 1:
            names = ", ".join(f"{i} {n}" for i, n in matches[:5])
            raise CommandFailed(f"{id_or_name!r} matches {len(matches)} accounts ({names}): give the id")
        view = account_view(conn, matches[0][0])
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    _print_account(view)


def _print_account(view: dict[str, Any]) -> None:
    acct, health, churn, expansion = view["account"], view["health"], view["churn"], view["expansion"]
    out.print(f"[bold]{acct['name']}[/bold] (#{acct['id']}) · {acct['segment'] or '-'} · CSM {acct['owner'] or '-'}")
    if health["score"] is None:
        out.print("not scored yet: run `cse score`")
        return
    trend = " ".join(f"{h['health']:.0f}" for h in view["history"] if h["health"] is not None)
    out.print(f"health {health['score']:.1f} ({health['band_label']}) on {view['as_of']}; 7d {health['trend_7d']}, "
              f"30d {health['trend_30d']}; history {trend}")  # fmt: skip
    out.print("factors: " + ", ".join(f"{k} {v:.0f}" for k, v in view["factors"].items() if v is not None))
    out.print(f"churn risk {_pct(churn['probability'])}" + (f" within {churn['horizon_days']} days"
              if churn["horizon_days"] else ""))  # fmt: skip
    out.print(f"expansion {expansion['type'] or '-'} (score {expansion['score']})")
    for driver in view["drivers"]:
        out.print(f"  driver: {driver}")
    for action in view["actions_log"]:
        out.print(f"  {action['status']:<9} {action['kind']:<12} {action['title'] or action['step']} "
                  f"({action['program']}, due {action['due']})")  # fmt: skip


def print_at_risk(top: list[dict[str, Any]], by_kind: dict[str, dict[str, int]]) -> None:
    """The demo's closing view: the riskiest accounts, why, what is planned for them, and all actions by kind."""
    if top:
        out.print("[bold]Top at-risk accounts[/bold]")
    for r in top:
        out.print(f"  #{r['id']} {r['name']}: {r['band']}, health {r['health']:.1f}, churn risk "
                  f"{_pct(r['churn_probability'])} · {'; '.join(r['drivers']) or 'no driver'}")  # fmt: skip
        for action in r["actions"][:3]:
            out.print(f"      {action['status']} {action['kind']}: {action['title'] or action['step']}")
    if by_kind:
        out.print("[bold]Actions planned, by kind[/bold]")
    for kind, statuses in sorted(by_kind.items()):
        detail = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
        out.print(f"  {kind}: {sum(statuses.values()):,} ({detail})")


def register(cli: typer.Typer) -> None:
    cli.command()(accounts)
    cli.command()(account)
