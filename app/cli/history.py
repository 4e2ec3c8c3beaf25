"""The history-import side of `cse import|train|evaluate|score --data NAME` (app/history): called from the
commands in app/cli/ml.py and app/cli/__init__.py when the import named is a history import in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app.settings import Settings

err = Console(stderr=True)
out = Console()
DEFAULT_EVERY_DAYS = 30  # a monthly panel
DEFAULT_HORIZON_DAYS = 30


def _print_json(data: dict[str, Any]) -> None:
    from app.ml.report import json_ready

    typer.echo(json.dumps(json_ready(data), indent=2))


def _refuse(error: Exception) -> typer.Exit:
    err.print(f"[red]{error}[/red]")
    return typer.Exit(1)


def _store():
    from app.store.db import make_engine, upgrade_schema
    from engine.health_config import load_health_config

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    return settings, engine, load_health_config(settings.health_config)


def is_history(name: str) -> bool:
    from app.ml.importer import history_meta

    return history_meta(Settings.from_env().data_dir, name) is not None


def refuse_panel_options(name: str, horizon: int | None, every: int | None) -> None:
    """A flat import is one snapshot with its own label: a horizon or a date step would be silently meaningless."""
    given = [flag for flag, value in (("--horizon", horizon), ("--every", every)) if value is not None]
    if given:
        reason = (f"{' and '.join(given)} cannot apply to {name!r}: a flat import is one snapshot with its own "
                  "label; import its event log and terms as history to get a panel")  # fmt: skip
        raise _refuse(ValueError(reason))


def _options(name: str, horizon: int | None, every: int | None, seed: int = 0, threads: int = 1, test_share=0.3):
    from app.history.train import HistoryOptions

    return HistoryOptions(name=name, horizon_days=horizon or DEFAULT_HORIZON_DAYS,
                          every_days=every or DEFAULT_EVERY_DAYS, seed=seed, threads=threads,
                          test_share=test_share)  # fmt: skip


def import_history_command(mapping: str, as_json: bool) -> None:
    from app.ml.import_mapping import ImportMappingError
    from app.ml.importer import import_file

    settings, engine, _ = _store()
    try:
        meta = import_file(mapping, settings.data_dir, engine, progress=err.print)
    except (ImportMappingError, FileNotFoundError, ValueError) as error:
        raise _refuse(error) from error
    assert isinstance(meta, dict)
    if as_json:
        _print_json(meta)
        return
    table = Table(title=f"Imported history {meta['name']} into the store", show_header=False)
    for key in ("events_read", "event_rows", "chunks", "chunks_skipped", "terms", "accounts", "churned",
                "plan_changes", "seat_changes", "data_end"):  # fmt: skip
        table.add_row(key, str(meta[key]))
    out.print(table)
    if meta["unmapped"]:
        err.print(f"[yellow]event types not in the mapping (skipped): {meta['unmapped']}[/yellow]")
    err.print(f"Evaluate on a monthly time split with: cse evaluate --data {meta['name']}")


def train_history_command(name: str, horizon: int | None, every: int | None, seed: int, threads: int,
                          as_json: bool) -> None:  # fmt: skip
    from app.history.train import train_history

    settings, engine, config = _store()
    try:
        artifact = train_history(engine, config, settings.data_dir, _options(name, horizon, every, seed, threads))
    except ValueError as error:
        raise _refuse(error) from error
    meta = artifact.meta
    summary = {"source": meta["source"], "model_version": artifact.version, "model": meta["model"],
               "horizon_days": meta["horizon_days"], "rows": meta["rows"], "positives": meta["positives"],
               "validation": meta["validation"], "upsell_validation": meta["upsell_validation"],
               "training_window": meta["training_window"]}  # fmt: skip
    if as_json:
        _print_json(summary)
        return
    out.print(summary)


def evaluate_history_command(name: str, horizon: int | None, every: int | None, seed: int, threads: int,
                             test_share: float, as_json: bool, scores: Path | None = None) -> None:  # fmt: skip
    from app.history.train import evaluate_history

    _, engine, config = _store()
    try:
        options = _options(name, horizon, every, seed, threads, test_share)
        report = evaluate_history(engine, config, options, scores_path=scores)
    except ValueError as error:
        raise _refuse(error) from error
    for warning in report["warnings"]:
        err.print(f"[red bold]WARNING[/red bold] {warning}")
    if as_json:
        _print_json(report)
        return
    table = Table(title=f"{name}: time split, {report['horizon_days']}-day horizon")
    for column in ("target", "model", "ROC-AUC", "PR-AUC", "test rows", "positives"):
        table.add_column(column)
    for target in ("churn", "upsell"):
        m = report[target]
        auc, pr = m.get("roc_auc", float("nan")), m.get("pr_auc", float("nan"))
        table.add_row(target, str(m["model"]), f"{auc:.3f}", f"{pr:.3f}", str(m.get("rows", "")),
                      str(m.get("positives", "")))  # fmt: skip
    out.print(table)
    lead = report.get("lead_time") or {}
    err.print(f"churners flagged before churn: {lead.get('flagged_share')}, median lead {lead.get('median_days')} days")


def backtest_history_command(name: str, horizon: int, every: int | None, test_share: float) -> dict:
    """The health backtest on a history import's monthly panel (refused, with the reason, on a flat import)."""
    from app.history.train import backtest_history

    if not is_history(name):
        err.print(f"[red]{name!r} is not a history import: a flat import has no dates to backtest on[/red]")
        raise typer.Exit(1)
    _, engine, config = _store()
    try:
        return backtest_history(engine, config, _options(name, horizon, every, 0, 1, test_share))
    except ValueError as error:
        raise _refuse(error) from error


def score_history_command(name: str, horizon: int | None, version: str | None, as_json: bool) -> None:
    import pandas as pd

    from app.history.train import score_history
    from app.ml.artifacts import ArtifactError

    settings, engine, config = _store()
    try:
        scores = score_history(engine, config, settings.data_dir, _options(name, horizon, None), version)
    except (ValueError, ArtifactError) as error:
        raise _refuse(error) from error
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date.astype(str)
    if as_json:
        _print_json({"import": name, "accounts": scores.to_dict("records")})
        return
    out.print(scores.head(20).to_string(index=False))
