"""Training and evaluation runs: the store's history (time split) or an imported export (cross-validation).

The pieces live in engine/learning (pure) and app/ml/dataset.py (the store); this module strings them together
into what `cse train`, `cse evaluate` and `cse backtest-health` report, and saves the artifact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from threadpoolctl import threadpool_limits

from app.ml.artifacts import Artifact, save_artifact
from app.ml.dataset import Panel, build_panel
from app.ml.early_warning import WARNING_HORIZONS, evaluate_warning, fit_warning_model, with_horizon
from app.ml.workers import model_workers, pool_or_here
from engine.canonical import FACTORS
from engine.health_config import HealthConfig
from engine.learning.evaluate import (
    calibration_table,
    classification_metrics,
    lead_time,
    lift_table,
    roc_points,
)
from engine.learning.expansion_model import train_expansion_model
from engine.learning.explain import contributions, global_importance, top_drivers
from engine.learning.features import FEATURES, categorical_features, numeric_features
from engine.learning.leakage import refuse_leaks, suspicious_score
from engine.learning.models import FeatureSpec, TrainConfig, cross_validate, train_classifier
from engine.learning.predict import ModelBundle
from engine.learning.survival import concordance_index, cross_validate_survival, fit_survival
from engine.learning.weights import backtest, risk_auc, weighted_health

SURVIVAL_MAX_ROWS = 200_000  # the Cox fit is O(rows x features) per iteration; a sample is plenty
EXPLAIN_SAMPLE_ROWS = 2_000


@dataclass(frozen=True)
class StoreOptions:
    """How store history becomes training data (observation dates every `every_days`, labels `horizon_days`)."""

    horizon_days: int = 30
    every_days: int = 7
    seed: int = 0
    threads: int | None = 1
    test_share: float = 0.3  # cse evaluate: share of the observation dates held out as the later test period
    survival: bool = True
    expansion: bool = True
    # The early-warning flag (app/ml/early_warning.py): churn within this horizon, flagged from the threshold at
    # which the flagged accounts are expected to churn at this rate.
    warning_horizon_days: int = 90
    warning_precision: float = 0.3
    # Worker processes for the panel's snapshots and the fits (app.ml.workers); 0 builds and fits in this process.
    workers: int = 2


def store_spec() -> FeatureSpec:
    """The feature spec of models trained on the store (engine.learning.features)."""
    return FeatureSpec(
        tuple(numeric_features()), tuple(categorical_features()), {k: v.label for k, v in FEATURES.items()}
    )


def _train_config(options: StoreOptions) -> TrainConfig:
    return TrainConfig(seed=options.seed, gap_days=options.horizon_days, threads=options.threads)


def capped(threads: int | None, call, *args, **kwargs):
    """`call(*args, **kwargs)` with its OpenMP and BLAS threads capped at `threads`, for work run on a worker.

    OpenMP's thread count is a setting of each thread (and a fresh worker process starts at one per core): a limit
    taken on the caller's thread does not reach the worker, whose boosting predictions (the early warning's
    evaluation and thresholds, the expansion model's checks) then ran on two OpenMP threads each, waiting for busy
    cores on a shared 2-core machine."""
    with threadpool_limits(limits=threads):
        return call(*args, **kwargs)


@dataclass(frozen=True)
class PendingBundle:
    """A bundle's fits, submitted to a pool (start_store_bundle); `result()` waits for them and assembles it."""

    horizon_days: int
    warning_horizon_days: int
    churn: Future
    survival: Future | None
    expansion: Future | None
    warning: Future | None

    def result(self) -> ModelBundle:
        extra: dict[str, Any] = {}
        survival_model = None
        if self.survival is not None:
            survival_model, extra["survival_validation"] = self.survival.result()
        bundle = ModelBundle(
            churn=self.churn.result(),
            horizon_days=self.horizon_days,
            survival=survival_model,
            expansion=self.expansion.result() if self.expansion is not None else None,
            extra=extra,
        )
        if self.warning is not None:
            try:
                bundle.warning, bundle.warning_threshold = self.warning.result()
                bundle.warning_horizon_days = self.warning_horizon_days
            except ValueError as error:
                extra["warning"] = str(error)
        return bundle


def start_store_bundle(
    frame: pd.DataFrame, options: StoreOptions, later: Panel | None = None, pool: Executor | None = None
) -> PendingBundle:
    """Submit the fits of fit_store_bundle to `pool` (worker processes, app.ml.workers; None: here, in turn).

    The fits (churn, survival, expansion, early warning) are independent of one another, each seeded and reading
    the panel without changing it: on workers side by side they give the same models as one after another. The
    longest go first, so two workers finish together.
    """
    spec = store_spec()
    config = _train_config(options)
    pool = pool_or_here(pool)
    limit = options.threads
    labels = {"dates": frame["as_of"], "groups": frame["account_id"]}
    expansion = None
    if options.expansion:
        expansion = pool.submit(capped, limit, train_expansion_model, frame, frame["expanded"], spec, config, **labels)
    churn = pool.submit(capped, limit, train_classifier, frame, frame["churned"], spec, config, **labels)
    warning = None
    if later is not None:
        warning = pool.submit(
            capped, limit, fit_warning_model,
            later.frame, options.warning_horizon_days, later.data_end, spec, config, options.warning_precision,
        )  # fmt: skip
    survival = None
    if options.survival and frame["event"].sum() > 0:
        survival = pool.submit(capped, limit, _fit_store_survival, frame, spec, options)
    return PendingBundle(options.horizon_days, options.warning_horizon_days, churn, survival, expansion, warning)


def fit_store_bundle(
    frame: pd.DataFrame, options: StoreOptions, later: Panel | None = None, pool: Executor | None = None
) -> ModelBundle:
    """Churn classifier, Cox survival model and (with enough history) expansion propensity on a panel frame, fitted
    on `pool`'s workers (None: here, in turn).

    With ``later`` (the same history's panel through the end of the data) the early-warning model joins them,
    or is left out with the reason in ``extra`` when the history is too short for its horizon.
    """
    return start_store_bundle(frame, options, later, pool).result()


def _fit_store_survival(frame: pd.DataFrame, spec: FeatureSpec, options: StoreOptions) -> tuple[Any, dict[str, Any]]:
    """The Cox model on (a sample of) the panel and its time-split concordance."""
    sample = frame
    if len(frame) > SURVIVAL_MAX_ROWS:
        sample = frame.sample(SURVIVAL_MAX_ROWS, random_state=options.seed)
    model = fit_survival(sample, sample["duration_days"], sample["event"], spec, threads=options.threads)
    return model, _survival_validation(sample, spec, options)


def _survival_validation(frame: pd.DataFrame, spec: FeatureSpec, options: StoreOptions) -> dict[str, Any]:
    """Concordance of a Cox model fitted on the earlier observation dates, measured on the latest quarter."""
    dates = np.sort(frame["as_of"].unique())
    if len(dates) < 2:
        return {"concordance": None, "reason": "one observation date"}
    first_valid = dates[len(dates) - max(1, round(0.25 * len(dates)))]
    train = frame[frame["as_of"] <= first_valid - pd.Timedelta(days=options.horizon_days)]
    valid = frame[frame["as_of"] >= first_valid]
    if train.empty or train["event"].sum() == 0 or valid["event"].sum() == 0:
        return {"concordance": None, "reason": "too little history for a time split"}
    model = fit_survival(train, train["duration_days"], train["event"], spec, threads=options.threads)
    concordance = concordance_index(valid["duration_days"], valid["event"], model.risk(valid))
    return {"concordance": concordance, "rows": len(valid)}


def load_panel(
    engine: Engine,
    health_config: HealthConfig,
    options: StoreOptions,
    through_end: bool = False,
    pool: Executor | None = None,
) -> Panel:
    """Point-in-time snapshots of the whole store history for these options (app.ml.dataset.build_panel), built
    on `pool`'s worker processes when given (app.ml.workers)."""
    with engine.connect() as conn:
        return build_panel(
            conn, health_config, options.horizon_days, options.every_days, through_end=through_end, engine=engine,
            pool=pool,
        )  # fmt: skip


def labelled(panel: Panel) -> Panel:
    """A panel built ``through_end`` cut down to the rows whose label over its horizon is known."""
    if panel.frame.empty or panel.data_end is None:
        return panel
    frame = with_horizon(panel.frame, panel.horizon_days, panel.data_end).reset_index(drop=True)
    observed = set(frame["as_of"].unique())  # once: a set of the column per date cost ~0.8 s on the demo's panel
    return replace(panel, frame=frame, dates=[d for d in panel.dates if pd.Timestamp(d) in observed])


def _learnable(panel: Panel) -> Panel:
    """The store's snapshots, refused with a reason when there is nothing to learn from."""
    known = labelled(panel).frame
    if known.empty:
        raise ValueError(
            "the store has no usable history: observation dates need "
            f"90 days of activity before them and {panel.horizon_days} days after (load a book or import data)"
        )
    if known["churned"].sum() == 0:
        raise ValueError("no account churned within the horizon after any observation date; nothing to learn")
    return panel


def training_window(panel: Panel, frame: pd.DataFrame) -> dict[str, Any]:
    """First/last observation date, how far labels look, and the data span: saved with every model."""
    dates = pd.to_datetime(frame["as_of"])
    return {
        "first_observation": dates.min().date().isoformat(),
        "last_observation": dates.max().date().isoformat(),
        "observation_dates": int(dates.nunique()),
        "labels_until": (dates.max() + pd.Timedelta(days=panel.horizon_days)).date().isoformat(),
        "data_start": panel.data_start.isoformat() if panel.data_start else None,
        "data_end": panel.data_end.isoformat() if panel.data_end else None,
    }


def train_store(
    engine: Engine,
    health_config: HealthConfig,
    data_dir: Path,
    options: StoreOptions = StoreOptions(),  # noqa: B008
) -> Artifact:
    """Train on every labelled observation date of the store and save a new `store` artifact."""
    with model_workers(options.workers) as pool:
        later = _learnable(load_panel(engine, health_config, options, through_end=True, pool=pool))
        panel = labelled(later)
        bundle = fit_store_bundle(panel.frame, options, later, pool)
    meta = {
        "source": "store",
        "seed": options.seed,
        "every_days": options.every_days,
        "training_window": training_window(panel, panel.frame),
        "expansion_validation": bundle.expansion.validation if bundle.expansion else None,
        "survival_validation": bundle.extra.get("survival_validation"),
    }
    return save_artifact(data_dir, bundle, meta)


def split_dates(dates: list[date] | np.ndarray, test_share: float, gap_days: int) -> tuple[list, list]:
    """Later dates for testing, earlier ones for training, with training labels ending before the test period.

    A training row observed at D carries a label looking up to D + horizon, so training dates stop `gap_days`
    (the horizon) before the first test date: no churn inside the test period is known when training.
    """
    ordered = sorted(pd.Timestamp(d) for d in dates)
    k = max(1, math.ceil(test_share * len(ordered)))
    test = ordered[len(ordered) - k :]
    cutoff = test[0] - pd.Timedelta(days=gap_days)
    train = [d for d in ordered if d <= cutoff]
    return train, test


@dataclass(frozen=True)
class Holdout:
    """A model fitted on the earlier observation dates and its probabilities on the later, held-out ones."""

    bundle: ModelBundle
    train: pd.DataFrame
    test: pd.DataFrame
    train_dates: list
    test_dates: list
    p: np.ndarray
    p_train: np.ndarray


def holdout_fit(frame: pd.DataFrame, options: StoreOptions, pool: Executor | None = None) -> Holdout:
    """The time-split guard shared by `cse evaluate` and automatic training (see split_dates); the bundle's fits on
    `pool`'s workers when given."""
    train_dates, test_dates = split_dates(frame["as_of"].unique(), options.test_share, options.horizon_days)
    if len(train_dates) < 2:
        raise ValueError(
            f"only {len(train_dates)} observation date(s) before the test period; the time split needs history of "
            f"at least 90 + {options.horizon_days} x 2 days plus a test period (try a smaller --horizon or --every, "
            "or a longer book: cse demo --days 365)"
        )
    train = frame[frame["as_of"].isin(train_dates)].reset_index(drop=True)
    test = frame[frame["as_of"].isin(test_dates)].reset_index(drop=True)
    bundle = fit_store_bundle(train, options, pool=pool)
    p_train = bundle.churn.predict_proba(train)
    return Holdout(bundle, train, test, train_dates, test_dates, bundle.churn.predict_proba(test), p_train)


def warning_report(later: Panel, options: StoreOptions, horizon_days: int | None = None) -> dict[str, Any]:
    """The early-warning evaluation (app.ml.early_warning) for one horizon, or the reason it cannot run."""
    horizon = horizon_days or options.warning_horizon_days
    config = replace(_train_config(options), gap_days=horizon)
    try:
        return evaluate_warning(later.frame, later.data_end, horizon, store_spec(), config, options.warning_precision)
    except ValueError as error:
        return {"horizon_days": horizon, "reason": str(error)}


def evaluate_store(
    engine: Engine,
    health_config: HealthConfig,
    options: StoreOptions = StoreOptions(),  # noqa: B008
) -> dict[str, Any]:
    """Time-split report: train on earlier observation dates, test on later ones (see split_dates); the early
    warning for each horizon on its own split (app.ml.early_warning)."""
    with model_workers(options.workers) as pool:
        later = _learnable(load_panel(engine, health_config, options, through_end=True, pool=pool))
        panel = labelled(later)
        frame = panel.frame
        held = holdout_fit(frame, options, pool)
    test_dates, train, test, bundle, p = held.test_dates, held.train, held.test, held.bundle, held.p
    model = bundle.churn
    y = test["churned"].to_numpy()
    report: dict[str, Any] = {
        "source": "store",
        "horizon_days": options.horizon_days,
        "every_days": options.every_days,
        "seed": options.seed,
        "train_window": training_window(panel, train),
        "test_window": {
            "first_observation": test_dates[0].date().isoformat(),
            "last_observation": test_dates[-1].date().isoformat(),
            "observation_dates": len(test_dates),
        },
        "train_rows": len(train),
        "model": model.name,
        "candidates": model.candidates,
        "metrics": classification_metrics(y, p),
        "threshold": model.threshold,
    }
    scores = test[["account_id", "as_of"]].assign(p=p)
    churned_at = frame.groupby("account_id")["churned_at"].first()
    report["lead_time"] = lead_time(scores, churned_at, model.threshold)
    report["early_warning"] = warning_report(later, options)
    report["early_warning_by_horizon"] = {
        h: report["early_warning"] if h == options.warning_horizon_days else warning_report(later, options, h)
        for h in WARNING_HORIZONS
    }
    report["calibration"] = calibration_table(y, p)
    report["lift"] = lift_table(y, p)
    report["roc"] = roc_points(y, p)
    report["health_auc"] = health_auc(test)
    if bundle.survival is not None:
        risk = bundle.survival.risk(test)
        report["survival"] = {
            "concordance": concordance_index(test["duration_days"], test["event"], risk),
            "rows": len(test),
        }
    if bundle.expansion is not None:
        pe = bundle.expansion.predict_proba(test)
        report["expansion"] = {"model": bundle.expansion.name, **classification_metrics(test["expanded"], pe)}
    else:
        report["expansion"] = {"model": None, "reason": "too few expansions in the training period"}
    sample = test.sample(min(EXPLAIN_SAMPLE_ROWS, len(test)), random_state=options.seed)
    contrib = contributions(model, sample)
    report["importance"] = global_importance(contrib, model).head(15)
    last = test[test["as_of"] == test_dates[-1]]
    top = last.assign(p=p[test["as_of"] == test_dates[-1]]).nlargest(10, "p")
    drivers = top_drivers(model, top, probability=top["p"].to_numpy())
    report["top_accounts"] = [
        {"account_id": int(a), "as_of": test_dates[-1].date().isoformat(), "churn_probability": round(float(q), 3),
         "churned_within_horizon": bool(c), "drivers": d}
        for a, q, c, d in zip(top["account_id"], top["p"], top["churned"], drivers, strict=True)
    ]  # fmt: skip
    return report


def health_auc(frame: pd.DataFrame) -> float:
    return risk_auc(frame["churned"].to_numpy(), frame["health"].to_numpy(dtype="float64", na_value=np.nan))


def backtest_health(
    engine: Engine,
    health_config: HealthConfig,
    options: StoreOptions = StoreOptions(),  # noqa: B008
) -> dict[str, Any]:
    """How well point-in-time health ranks later churners; weights fitted on earlier dates, judged on later."""
    return backtest_panel(_learnable(load_panel(engine, health_config, options)), health_config, options)


def backtest_panel(panel: Panel, health_config: HealthConfig, options: StoreOptions) -> dict[str, Any]:
    """backtest_health on any panel of point-in-time snapshots (the store's, or a history import's)."""
    frame = panel.frame
    factors = _factor_frame(frame)
    y = frame["churned"].to_numpy()
    train_dates, test_dates = split_dates(frame["as_of"].unique(), options.test_share, options.horizon_days)
    current = {f.value: w for f, w in health_config.weights.as_dict().items()}
    if len(train_dates) >= 1:
        train = np.flatnonzero(frame["as_of"].isin(train_dates).to_numpy())
        test = np.flatnonzero(frame["as_of"].isin(test_dates).to_numpy())
    else:
        train, test = np.arange(len(y)), None
    result = backtest(factors, y, current, train, test)
    result["horizon_days"] = options.horizon_days
    result["observation_dates"] = len(panel.dates)
    proposed = result["proposed_weights"]
    result["proposed_health_yaml"] = "weights:\n" + "".join(
        f"  {f.value}: {round(100 * proposed.get(f.value, 0.0))}\n" for f in FACTORS
    )
    result["note"] = (
        "Health is recomputed as of each observation date from point-in-time data only; ROI, goal attainment, "
        "champion flags and active seats are kept by the CRM as of today, so the factors built on them (outcomes, "
        "part of relationship and engagement) are not backtested and keep their current weight."
    )
    return result


def _factor_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The six health factors of a learnable panel (a factor never computed is all NaN)."""
    return pd.DataFrame({f.value: frame.get(f"f_{f.value}", pd.Series(np.nan, index=frame.index)) for f in FACTORS})


def rank_churners(
    engine: Engine,
    health_config: HealthConfig,
    weights: Mapping[str, Mapping[str, float]],
    options: StoreOptions = StoreOptions(),  # noqa: B008
) -> dict[str, Any]:
    """ROC-AUC of −health at ranking the accounts that churned within the horizon, for each named set of weights,
    all on the same point-in-time panel (built once, with `health_config`'s factor ranges): what the health
    settings page compares the current and a draft weighting by. Nothing is fitted."""
    frame = _learnable(load_panel(engine, health_config, options)).frame
    factors, y = _factor_frame(frame), frame["churned"].to_numpy()
    auc = {name: risk_auc(y, weighted_health(factors, dict(w))) for name, w in weights.items()}
    return {"rows": int(len(y)), "churned": int(y.sum()), "horizon_days": options.horizon_days, "auc": auc}


def train_tabular(
    frame: pd.DataFrame,
    label: np.ndarray,
    spec: FeatureSpec,
    data_dir: Path | None,
    *,
    cv: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
    durations: np.ndarray | None = None,
    source: str = "import",
    save: bool = True,
) -> dict[str, Any]:
    """Cross-validate (optional) and fit on an imported snapshot; returns the JSON-ready summary."""
    config = TrainConfig(seed=seed, threads=threads)
    y = np.asarray(label, dtype="int64")
    refuse_leaks(frame, y, spec)
    summary: dict[str, Any] = {"source": source, "rows": len(y), "positives": int(y.sum()), "seed": seed}
    warnings = []
    if cv:
        result = cross_validate(frame, y, spec, config, folds=cv)
        result.pop("out_of_fold")
        summary.update({"cv": cv, **result})
        warnings.append(suspicious_score(result, "cross-validation"))
    if durations is not None and cv:
        summary["survival"] = cross_validate_survival(frame, durations, y, spec, folds=cv, seed=seed)
    model = train_classifier(frame, y, spec, config)
    survival = fit_survival(frame, durations, y, spec, time_unit="periods") if durations is not None else None
    bundle = ModelBundle(churn=model, horizon_days=None, survival=survival, kind="tabular")
    summary["model"] = model.name
    summary["validation"] = model.validation
    warnings.append(suspicious_score(model.validation, "validation"))
    summary["warnings"] = [w for w in warnings if w]
    if save and data_dir is not None:
        artifact = save_artifact(data_dir, bundle, {"source": source, "seed": seed, "cv": summary.get("cv")})
        summary["model_version"] = artifact.version
    return summary
