"""`cse import`, `cse train`, `cse evaluate`, `cse backtest-health`: the machine-learning commands.

app/cli.py calls `register(cli)` to add them at the top level. Progress goes to stderr; results to stdout (as a
table, or as JSON with --json so scripts and CI can read them).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.settings import Settings

err = Console(stderr=True)
out = Console()


@contextmanager
def _exit_on(*refusals: type[Exception]) -> Iterator[None]:
    """Errors the ML layer raises to refuse a request (no usable history, no such import): said in red, exit 1."""
    try:
        yield
    except refusals as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error


HorizonOpt = Annotated[int, typer.Option("--horizon", help="Churn label horizon in days (30, 60, 90).", min=1)]
EveryOpt = Annotated[int, typer.Option("--every", help="Days between observation dates.", min=1)]
DataHorizonOpt = Annotated[
    int | None, typer.Option("--horizon", help="Churn label horizon in days (30, 60, 90; default 30).", min=1)
]
DataEveryOpt = Annotated[
    int | None, typer.Option("--every", help="Days between observation dates (default 7; 30 on imports).", min=1)
]
DataOpt = Annotated[str | None, typer.Option(help="An import (cse import) instead of the store's own history.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (same seed and data, same model).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ThreadsOpt = Annotated[int, typer.Option(help="CPU threads for model fitting (1 is fastest on busy machines).", min=1)]


def _plain(value: Any) -> Any:
    from app.ml.report import json_ready

    return json_ready(value)


def _print_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(_plain(data), indent=2))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _kv_table(title: str, pairs: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key, value in pairs.items():
        table.add_row(key, _fmt(value))
    return table


def _store():
    from app.store.db import make_engine, upgrade_schema
    from engine.health_config import load_health_config

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    return settings, engine, load_health_config(settings.health_config)


def import_command(
    mapping: Annotated[str, typer.Argument(help="Mapping file, or the name of one in mappings/import/ (telco, ...).")],
    as_json: JsonOpt = False,
) -> None:
    """Load a tabular export (customers, churn label, optional activity log), or a product's history (event log and
    subscription terms, into the store), through a mapping file."""
    from app.ml.import_mapping import ImportMappingError, load_mapping, resolve_mapping_path
    from app.ml.importer import import_file

    try:
        history = load_mapping(resolve_mapping_path(mapping)).history is not None
    except ImportMappingError as error:
        err.print(f"[red]import failed:[/red] {error}")
        raise typer.Exit(1) from error
    if history:
        from app.cli.history import import_history_command

        import_history_command(mapping, as_json)
        return
    settings = Settings.from_env()
    try:
        dataset = import_file(mapping, settings.data_dir)
    except (ImportMappingError, FileNotFoundError) as error:
        err.print(f"[red]import failed:[/red] {error}")
        raise typer.Exit(1) from error
    if as_json:
        _print_json(dataset.meta)
        return
    meta = dataset.meta
    out.print(
        _kv_table(
            f"Imported {meta['name']}",
            {
                "rows": meta["rows"],
                "churned": meta["positives"],
                "numeric features": len(meta["features"]["numeric"]),
                "categorical features": len(meta["features"]["categorical"]),
                "survival time": meta["duration_unit"] or "none",
                "activity events": meta["activity_events"],
            },
        )
    )
    err.print(f"Train on it with: cse train --data {meta['name']} --cv 5")


def train_command(
    data: Annotated[
        str | None, typer.Option(help="Train on an imported dataset (cse import) instead of the store.")
    ] = None,
    cv: Annotated[
        int | None, typer.Option(help="Also report stratified k-fold cross-validated metrics.", min=2)
    ] = None,
    horizon: DataHorizonOpt = None,
    every: DataEveryOpt = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = 1,
    save: Annotated[bool, typer.Option(help="Save the trained model as a new version.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Train the churn model (and survival and expansion models) and save it as a versioned artifact."""
    from app.cli.history import is_history, refuse_panel_options, train_history_command
    from app.ml.train import StoreOptions, load_panel, store_spec, train_store, train_tabular
    from engine.learning.leakage import LeakageError
    from engine.learning.models import TrainConfig, cross_validate

    started = time.perf_counter()
    if data and is_history(data):
        train_history_command(data, horizon, every, seed, threads, as_json)
        return
    if data:
        from app.ml.importer import load_dataset

        refuse_panel_options(data, horizon, every)
        settings = Settings.from_env()
        with _exit_on(FileNotFoundError):
            dataset = load_dataset(settings.data_dir, data)
        err.print(f"Training on import {data!r}: {len(dataset.frame)} rows")
        with _exit_on(LeakageError):
            summary = train_tabular(
                dataset.frame, dataset.label, dataset.spec, settings.data_dir if save else None, cv=cv, seed=seed,
                threads=threads, durations=dataset.durations, source=f"import:{data}", save=save,
            )  # fmt: skip
        for warning in summary.get("warnings", []):
            err.print(f"[red bold]WARNING[/red bold] {warning}")
    else:
        settings, engine, config = _store()
        horizon, every = horizon or 30, every or 7
        options = StoreOptions(horizon_days=horizon, every_days=every, seed=seed, threads=threads)
        summary = {"source": "store", "horizon_days": horizon, "seed": seed}
        with _exit_on(ValueError):
            if cv:
                err.print("Building point-in-time snapshots for cross-validation (grouped by account)")
                panel = load_panel(engine, config, options)
                frame = panel.frame
                result = cross_validate(
                    frame, frame["churned"], store_spec(), TrainConfig(seed=seed, threads=threads), cv,
                    groups=frame["account_id"],
                )  # fmt: skip
                result.pop("out_of_fold")
                summary.update({"cv": cv, **result})
            if save:
                err.print("Training on the store's history")
                artifact = train_store(engine, config, settings.data_dir, options)
                summary.update(
                    {
                        "model_version": artifact.version,
                        "model": artifact.meta["model"],
                        "validation": artifact.meta["validation"],
                        "training_window": artifact.meta["training_window"],
                        "rows": artifact.meta["rows"],
                        "positives": artifact.meta["positives"],
                    }
                )
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        _print_json(summary)
        return
    pairs = {k: summary[k] for k in ("source", "model", "model_version", "rows", "positives") if k in summary}
    if cv:
        pairs.update({f"cv {k}": summary[k] for k in ("roc_auc", "pr_auc", "brier", "top_decile_lift")})
        if "survival" in summary:
            pairs["cv concordance"] = summary["survival"]["concordance"]
    validation = summary.get("validation") or {}
    pairs.update({f"validation {k}": validation[k] for k in ("roc_auc", "pr_auc", "brier") if k in validation})
    pairs["seconds"] = summary["seconds"]
    out.print(_kv_table("Churn model training", pairs))


def evaluate_command(
    data: DataOpt = None,
    horizon: DataHorizonOpt = None,
    every: DataEveryOpt = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = 1,
    test_share: Annotated[
        float, typer.Option(help="Share of observation dates held out as the later test period.")
    ] = 0.3,
    html: Annotated[bool, typer.Option(help="Write the HTML report under the data dir's reports/.")] = True,
    scores: Annotated[
        Path | None,
        typer.Option(help="With --data: write each test row's churn probability and label to this CSV file."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Time-split evaluation on the store or a history import: train on earlier observation dates, test on later."""
    from app.cli.history import evaluate_history_command, is_history
    from app.ml.report import json_ready, write_report
    from app.ml.train import StoreOptions, evaluate_store

    if data:
        if not is_history(data):
            err.print(f"[red]{data!r} is not a history import: a flat import has no dates to split on; use "
                      f"cse train --data {data} --cv 5[/red]")  # fmt: skip
            raise typer.Exit(1)
        evaluate_history_command(data, horizon, every, seed, threads, test_share, as_json, scores)
        return
    if scores is not None:
        err.print("[red]--scores needs --data (the test rows of a history import)[/red]")
        raise typer.Exit(1)
    horizon, every = horizon or 30, every or 7
    settings, engine, config = _store()
    options = StoreOptions(horizon_days=horizon, every_days=every, seed=seed, threads=threads, test_share=test_share,
                           warning_precision=settings.warning_precision,
                           warning_horizon_days=settings.warning_horizon_days)  # fmt: skip
    err.print("Building point-in-time snapshots and training on the earlier period")
    with _exit_on(ValueError):
        report = evaluate_store(engine, config, options)
    if html:
        report["report_path"] = str(write_report(report, settings.data_dir))
    if as_json:
        data = json_ready(report)
        data.pop("roc", None)
        _print_json(data)
        return
    m, lead = report["metrics"], report["lead_time"]
    out.print(
        _kv_table(
            f"Time-split evaluation ({report['horizon_days']}-day horizon): train "
            f"{report['train_window']['first_observation']}..{report['train_window']['last_observation']}, test "
            f"{report['test_window']['first_observation']}..{report['test_window']['last_observation']}",
            {
                "model": report["model"],
                "ROC-AUC": m["roc_auc"],
                "PR-AUC": m["pr_auc"],
                "Brier": m["brier"],
                "top-decile lift": m["top_decile_lift"],
                "base rate": m["base_rate"],
                "test rows / churned": f"{m['rows']} / {m['positives']}",
                "churners flagged before churn": lead["flagged_share"],
                "median lead time (days)": lead["median_days"],
                "health AUC (−health)": report["health_auc"],
                "survival concordance": report.get("survival", {}).get("concordance", float("nan")),
                "expansion ROC-AUC": report.get("expansion", {}).get("roc_auc", float("nan")),
            },
        )
    )
    calibration = Table(title="Calibration (deciles of predicted probability)")
    for column in ("bin", "rows", "mean_predicted", "observed_rate"):
        calibration.add_column(column, justify="right")
    for row in report["calibration"].itertuples(index=False):
        calibration.add_row(str(row.bin), str(row.rows), f"{row.mean_predicted:.4f}", f"{row.observed_rate:.4f}")
    out.print(calibration)
    for warning in report["early_warning_by_horizon"].values():
        out.print(_early_warning_table(warning))
    if html:
        err.print(f"Report: {report['report_path']}")


def _early_warning_table(warning: dict[str, Any]) -> Table:
    """The early-warning flag on the held-out dates: lead time before churn next to false alarms among survivors."""
    if "reason" in warning:
        return _kv_table(f"Early warning ({warning['horizon_days']}-day model)", {"not evaluated": warning["reason"]})
    return _kv_table(
        f"Early warning ({warning['horizon_days']}-day model, threshold {warning['threshold']:.3f} for an expected "
        f"precision of {warning['target_precision']:.0%})",
        {
            "churners flagged before churn": warning["flagged_churners_share"],
            "lead time p25 / median / p75 (days)": f"{warning['lead_days_p25']:.0f} / "
            f"{warning['lead_days_median']:.0f} / {warning['lead_days_p75']:.0f}",
            "survivors falsely flagged": warning["false_alarm_share"],
            "flags followed by churn within the horizon": warning["precision"],
            "churners / survivors": f"{warning['churners']} / {warning['survivors']}",
            f"churners younger than {warning['lead_window_days']} days: count / flagged / median lead": (
                f"{warning['young_churners']} / {warning['young_flagged_share']:.2f} / "
                f"{warning['young_lead_days_median']:.0f}"
            ),
        },
    )


def backtest_health_command(
    data: DataOpt = None,
    horizon: HorizonOpt = 30,
    every: DataEveryOpt = None,
    test_share: Annotated[
        float, typer.Option(help="Share of observation dates used to judge the fitted weights.")
    ] = 0.3,
    as_json: JsonOpt = False,
) -> None:
    """How well the six-factor health score ranks accounts that later churned, and weights fitted to history."""
    from app.ml.train import StoreOptions, backtest_health

    if data:
        from app.cli.history import backtest_history_command

        result = backtest_history_command(data, horizon, every, test_share)
    else:
        _, engine, config = _store()
        options = StoreOptions(horizon_days=horizon, every_days=every or 7, test_share=test_share)
        with _exit_on(ValueError):
            result = backtest_health(engine, config, options)
    if as_json:
        _print_json(result)
        return
    out.print(
        _kv_table(
            f"Health backtest: churn within {horizon} days",
            {
                "rows (account × date)": result["rows"],
                "churned": result["positives"],
                "AUC of −health, current weights (all rows)": result["auc_current"],
                "AUC, current weights (later test dates)": result.get("auc_current_test", float("nan")),
                "AUC, proposed weights (later test dates)": result.get("auc_proposed_test", float("nan")),
            },
        )
    )
    table = Table(title="Weights: current vs fitted to this company's history")
    for column in ("factor", "coverage", "AUC alone", "current", "proposed"):
        table.add_column(column, justify="right")
    for row in result["factors"].itertuples(index=False):
        proposed = f"{100 * row.proposed_weight:.0f} %" if row.measured else "not measured"
        table.add_row(row.factor, f"{row.coverage:.0%}", _fmt(row.auc), f"{100 * row.current_weight:.0f} %", proposed)
    out.print(table)
    err.print(result["note"])
    err.print("To adopt the proposal, put this in your health config (CSE_HEALTH_CONFIG):")
    out.print(result["proposed_health_yaml"], highlight=False)


def register(cli: typer.Typer) -> None:
    """Add the ML commands to the `cse` app at the top level."""
    cli.command("import")(import_command)
    cli.command("train")(train_command)
    cli.command("evaluate")(evaluate_command)
    cli.command("backtest-health")(backtest_health_command)
