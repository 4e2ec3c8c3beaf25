"""Candidate classifiers, honest selection between them, calibration, and cross-validation.

Why this shape:

* **Two candidates**, a standardized logistic regression and a regularized histogram gradient-boosting model.
  On tabular churn data the linear model is often as good as boosting (IBM Telco: 0.845 vs 0.834 ROC-AUC), is
  calibrated out of the box and explains itself exactly; boosting wins when effects are non-linear or interact.
  Rather than guess, both are fitted and compared on data they did not see.
* **Selection on later data.** With observation dates, the validation rows are the latest dates and the training
  rows end `gap_days` (the horizon) before them, so no training label looks into the validation period. Without
  dates (one snapshot) it is a stratified random split. A more complex candidate must beat the simpler one by
  `simplicity_margin` ROC-AUC to be chosen: a tie goes to the model that explains itself exactly.
* **No coin toss on a few positives.** When that validation split holds fewer than `min_selection_positives`
  positives (a small book, a low churn rate: a dozen churners give each ROC-AUC a ±0.15 interval), the choice
  is instead made on out-of-fold scores of a k-fold split grouped by account (`groups`), pooled over every
  training row, so every positive votes once and no account is scored by a model that saw it. The time split
  still calibrates the chosen model.
* **Regularization chosen on grouped folds** (optional, `logreg_c_grid`): a wide panel (a hundred features or more,
  many of them correlated views of the same usage) with a few hundred positives needs a much stronger penalty
  than a narrow one; no single C suits both. The logistic regression's C is then the one with the best pooled
  out-of-fold ROC-AUC over a k-fold split of the training rows grouped by account (the validation rows are not
  used, so the comparison with boosting on them stays honest).
* **Calibration** by Platt scaling of the chosen model's validation scores. Monotonic, so it never changes the
  ranking (ROC-AUC), and fitted on later data, so it also absorbs a drift of the base rate between periods.
* **Refit** of the chosen pipeline on all rows, then the calibration learned on validation is applied to it.
* **Deterministic**: every random choice draws from `seed`, and fits run single-threaded unless asked otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from engine.learning.evaluate import classification_metrics, summarize_folds
from engine.learning.preprocess import (
    MISSING_CATEGORY,
    CompiledTransform,
    FeatureSpec,
    FrameSelector,
    make_preprocessor,
    prepare_frame,
)

CANDIDATES: tuple[str, ...] = ("logreg", "hgb")
CV_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift")


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of `train_classifier`; the defaults are what `cse train` uses."""

    seed: int = 0
    candidates: tuple[str, ...] = CANDIDATES
    validation_share: float = 0.25
    gap_days: int = 0  # with dates: training rows end this many days before the validation dates (the horizon)
    simplicity_margin: float = 0.003
    refit: bool = True
    # Candidates are compared on at most this many training rows (sampled with the seed); the chosen one is then
    # refitted on all rows. Keeps a 1M-row panel's selection cheap without changing the final model's data.
    max_selection_rows: int = 250_000
    # The final refit uses at most this many rows (a seeded sample): past a few hundred thousand rows these models'
    # learning curves are flat, while boosting time keeps growing linearly.
    max_fit_rows: int = 600_000
    # OpenMP/BLAS threads. One by default: measured on a shared 2-core machine, two threads made a boosting fit
    # 9x *slower* (spin-waiting threads fight other processes), and one thread keeps results bit-identical.
    threads: int | None = 1
    flag_quantile: float = 0.9  # the at-risk flag marks the top 10 % of validation scores
    # Below this many validation positives the candidates are compared by grouped k-fold instead (module doc):
    # with 100 positives the 95 % interval of a ROC-AUC near 0.7 is about ±0.05.
    min_selection_positives: int = 100
    selection_folds: int = 5
    # Inverse regularization strengths tried for the logistic regression on grouped folds of the training rows
    # (module doc); empty: the fixed LOGREG_C.
    logreg_c_grid: tuple[float, ...] = ()


LOGREG_C = 0.5
LOGREG_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # for TrainConfig.logreg_c_grid: strong to weak penalty


def make_candidate(name: str, spec: FeatureSpec, seed: int, c: float = LOGREG_C) -> Pipeline:
    """A fresh, unfitted candidate pipeline by name (see CANDIDATES); `c`: the logistic regression's inverse
    regularization strength."""
    if name == "logreg":
        model: BaseEstimator = LogisticRegression(C=c, max_iter=2000)
    elif name == "hgb":
        # Shallow, slow-learning, regularized trees: churn panels are noisy, and deep trees memorise accounts.
        model = HistGradientBoostingClassifier(
            learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0, max_iter=150,
            early_stopping=True, validation_fraction=0.1, n_iter_no_change=20, random_state=seed,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown candidate {name!r}; expected one of {', '.join(CANDIDATES)}")
    return Pipeline([("frame", FrameSelector(spec)), ("pre", make_preprocessor(spec)), ("model", model)])


LOGIT_LIMIT = float(np.log((1 - 1e-7) / 1e-7))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class BinaryModel:
    """A fitted, calibrated classifier: P(label) = sigmoid(a * logit(pipeline score) + b)."""

    spec: FeatureSpec
    name: str
    pipeline: Pipeline
    calibration: tuple[float, float]
    reference: dict[str, Any]  # per-feature "typical account" values that explanations compare against
    candidates: dict[str, dict[str, float]]  # validation metrics of every candidate
    validation: dict[str, float]  # validation metrics of the chosen, calibrated model
    threshold: float  # probability from which an account is flagged
    base_rate: float
    rows: int
    positives: int
    fit_seconds: float = 0.0
    validation_scores: np.ndarray | None = field(default=None, repr=False)  # sorted, for percentile ranks
    compiled: CompiledTransform | None = field(default=None, repr=False)

    def model_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The preprocessed matrix the final estimator sees (through the compiled, NumPy-only transform)."""
        if self.compiled is None:
            self.compiled = CompiledTransform.from_pipeline(self.pipeline, self.spec)
        return self.compiled(frame)

    def raw_logit(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of the pipeline (clipped like a probability in [1e-7, 1 - 1e-7])."""
        estimator = self.pipeline.named_steps["model"]
        x = self.model_matrix(frame)
        if isinstance(estimator, LogisticRegression):
            z = x @ estimator.coef_[0] + estimator.intercept_[0]
        else:
            z = estimator.decision_function(x)
        return np.clip(z, -LOGIT_LIMIT, LOGIT_LIMIT)

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds (what the explanations decompose)."""
        a, b = self.calibration
        return a * self.raw_logit(frame) + b

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability per row of `frame` (any frame holding the spec's columns)."""
        return _sigmoid(self.logit(frame))

    def percentile(self, probability: np.ndarray) -> np.ndarray:
        """Share (0-1) of validation accounts scored below each probability (used to scale scores to 0-100)."""
        if self.validation_scores is None or not len(self.validation_scores):
            return np.asarray(probability, dtype="float64")
        return np.searchsorted(self.validation_scores, probability, side="right") / len(self.validation_scores)


def split_rows(y: np.ndarray, dates: np.ndarray | None, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation rows (see the module doc); raises if either lacks both classes."""
    n = len(y)
    rng = np.random.default_rng(config.seed)
    if dates is not None:
        days = pd.to_datetime(pd.Series(dates)).to_numpy("datetime64[D]")
        unique = np.unique(days)
        if len(unique) >= 2:
            k = max(1, int(round(config.validation_share * len(unique))))
            first_valid = unique[len(unique) - k]
            gap = np.timedelta64(int(config.gap_days), "D")
            train = np.flatnonzero(days <= first_valid - gap)
            valid = np.flatnonzero(days >= first_valid)
            if len(train) and 0 < y[train].sum() < len(train) and 0 < y[valid].sum() < len(valid):
                return train, valid
    # One snapshot (or too few dates): a stratified random split.
    valid_mask = np.zeros(n, dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        take = int(round(config.validation_share * len(idx)))
        valid_mask[rng.choice(idx, size=take, replace=False)] = True
    train, valid = np.flatnonzero(~valid_mask), np.flatnonzero(valid_mask)
    if not (0 < y[train].sum() < len(train) and 0 < y[valid].sum() < len(valid)):
        raise ValueError("need both classes in training and validation data (too few positives or negatives)")
    return train, valid


def _reference(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """The 'typical account': median of each numeric feature, most frequent category of each categorical one."""
    ref: dict[str, Any] = {}
    for name in spec.numeric:
        value = frame[name].median()
        ref[name] = None if pd.isna(value) else float(value)
    for name in spec.categorical:
        counts = frame[name].value_counts()
        ref[name] = str(counts.index[0]) if len(counts) else MISSING_CATEGORY
    return ref


def _fit_platt(raw_logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of a logistic fit of the labels on the raw log-odds (Platt scaling)."""
    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(raw_logit.reshape(-1, 1), y)
    a = float(lr.coef_[0, 0])
    if a <= 0:  # a model that ranks backwards on validation keeps its own scores rather than being flipped
        return 1.0, 0.0
    return a, float(lr.intercept_[0])


def _folds(
    y: np.ndarray, groups: np.ndarray | None, config: TrainConfig
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The rows (at most `max_selection_rows`, sampled by whole groups) and their stratified k-fold split, grouped
    by account when `groups` is given; no split when there are too few positives or negatives for two folds."""
    rng = np.random.default_rng(config.seed)
    rows = np.arange(len(y))
    if groups is not None and len(rows) > config.max_selection_rows:
        keys = np.unique(groups)
        share = config.max_selection_rows / len(rows)
        rows = np.flatnonzero(np.isin(groups, rng.choice(keys, size=max(1, int(share * len(keys))), replace=False)))
    elif len(rows) > config.max_selection_rows:
        rows = np.sort(rng.choice(rows, size=config.max_selection_rows, replace=False))
    folds = int(min(config.selection_folds, y[rows].sum(), len(rows) - y[rows].sum()))
    if folds < 2:
        return rows, []
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
        return rows, list(splitter.split(np.zeros(len(rows)), y[rows]))
    grouped = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    return rows, list(grouped.split(np.zeros(len(rows)), y[rows], groups[rows]))


def _out_of_fold_auc(make: Any, X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, splits: list) -> float:  # noqa: N803
    """Pooled out-of-fold ROC-AUC of the pipelines `make()` builds, over `splits` of `rows`."""
    out_of_fold = np.zeros(len(rows))
    for train, test in splits:
        pipeline = make().fit(X.iloc[rows[train]], y[rows[train]])
        out_of_fold[test] = pipeline.predict_proba(X.iloc[rows[test]])[:, 1]
    return float(classification_metrics(y[rows], out_of_fold)["roc_auc"])


def _grouped_selection(
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: FeatureSpec,
    config: TrainConfig,
    groups: np.ndarray | None,
    c: float = LOGREG_C,
) -> dict[str, float]:
    """Pooled out-of-fold ROC-AUC of each candidate over a k-fold split of all rows (see _folds)."""
    rows, splits = _folds(y, groups, config)
    if not splits:
        return {name: float("nan") for name in config.candidates}
    return {name: _out_of_fold_auc(lambda name=name: make_candidate(name, spec, config.seed, c), X, y, rows, splits)
            for name in config.candidates}  # fmt: skip


def _tune_logreg_c(
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: FeatureSpec,
    config: TrainConfig,
    groups: np.ndarray | None,
) -> tuple[float, float]:
    """The C of `logreg_c_grid` with the best pooled out-of-fold ROC-AUC on grouped folds (module doc) and that
    ROC-AUC; LOGREG_C and NaN when there is no grid or too few positives to fold."""
    if not config.logreg_c_grid:
        return LOGREG_C, float("nan")
    rows, splits = _folds(y, groups, config)
    if not splits:
        return LOGREG_C, float("nan")
    score = {c: _out_of_fold_auc(lambda c=c: make_candidate("logreg", spec, config.seed, c), X, y, rows, splits)
             for c in config.logreg_c_grid}  # fmt: skip
    best = max(score, key=lambda c: score[c])
    return best, score[best]


def train_classifier(
    frame: pd.DataFrame,
    y: np.ndarray | pd.Series,
    spec: FeatureSpec,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen dataclass
    dates: np.ndarray | pd.Series | None = None,
    groups: np.ndarray | pd.Series | None = None,
) -> BinaryModel:
    """Fit every candidate on the training split, choose on validation (or, with few validation positives, on
    grouped k-fold; see the module doc), calibrate on validation, refit on all rows."""
    started = time.perf_counter()
    y = np.asarray(y, dtype="int64")
    X = prepare_frame(frame, spec)  # noqa: N806
    train, valid = split_rows(y, None if dates is None else np.asarray(dates), config)
    rng = np.random.default_rng(config.seed)
    fit_rows = train
    if len(train) > config.max_selection_rows:
        fit_rows = np.sort(rng.choice(train, size=config.max_selection_rows, replace=False))

    results: dict[str, dict[str, float]] = {}
    fitted: dict[str, Pipeline] = {}
    with threadpool_limits(limits=config.threads):
        c, c_score = LOGREG_C, float("nan")
        if "logreg" in config.candidates:
            train_groups = None if groups is None else np.asarray(groups)[fit_rows]
            c, c_score = _tune_logreg_c(X.iloc[fit_rows], y[fit_rows], spec, config, train_groups)
        for name in config.candidates:
            pipeline = make_candidate(name, spec, config.seed, c)
            pipeline.fit(X.iloc[fit_rows], y[fit_rows])
            p = pipeline.predict_proba(X.iloc[valid])[:, 1]
            results[name] = classification_metrics(y[valid], p)
            fitted[name] = pipeline
        if not np.isnan(c_score):
            results["logreg"].update({"regularization_c": c, "c_cv_roc_auc": c_score})
        score = {name: results[name]["roc_auc"] for name in config.candidates}
        if len(config.candidates) > 1 and y[valid].sum() < config.min_selection_positives:
            score = _grouped_selection(X, y, spec, config, None if groups is None else np.asarray(groups), c)
            for name in config.candidates:
                results[name]["selection_cv_roc_auc"] = score[name]
    chosen = config.candidates[0]
    for name in config.candidates[1:]:
        if score[name] > score[chosen] + config.simplicity_margin:
            chosen = name
    raw_valid = _logit(fitted[chosen].predict_proba(X.iloc[valid])[:, 1])
    a, b = _fit_platt(raw_valid, y[valid])
    p_valid = _sigmoid(a * raw_valid + b)

    pipeline = fitted[chosen]
    if config.refit:
        pipeline = make_candidate(chosen, spec, config.seed, c)
        rows = np.arange(len(y))
        if len(rows) > config.max_fit_rows:
            rows = np.sort(rng.choice(rows, size=config.max_fit_rows, replace=False))
        with threadpool_limits(limits=config.threads):
            pipeline.fit(X.iloc[rows], y[rows])
    return BinaryModel(
        spec=spec,
        name=chosen,
        pipeline=pipeline,
        calibration=(a, b),
        reference=_reference(X, spec),
        candidates=results,
        validation=classification_metrics(y[valid], p_valid),
        threshold=float(np.quantile(p_valid, config.flag_quantile)),
        base_rate=float(y.mean()),
        rows=len(y),
        positives=int(y.sum()),
        fit_seconds=time.perf_counter() - started,
        validation_scores=np.sort(p_valid),
    )


def cross_validate(
    frame: pd.DataFrame,
    y: np.ndarray | pd.Series,
    spec: FeatureSpec,
    config: TrainConfig = TrainConfig(),  # noqa: B008
    folds: int = 5,
    groups: np.ndarray | pd.Series | None = None,
) -> dict[str, Any]:
    """Stratified k-fold estimate of the *whole* training procedure (selection and calibration included).

    Each outer fold runs train_classifier on the other folds only, so the candidate choice never sees the fold
    it is scored on. With `groups` (e.g. account ids of a panel), all rows of a group stay in one fold, so an
    account is never scored by a model that saw it. Returns per-fold metrics, their mean and SD, pooled
    out-of-fold metrics and the choices.
    """
    y = np.asarray(y, dtype="int64")
    if groups is None:
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed).split(np.zeros(len(y)), y)
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=config.seed)
        splits = splitter.split(np.zeros(len(y)), y, np.asarray(groups))
    out_of_fold = np.full(len(y), np.nan)
    per_fold: list[dict[str, float]] = []
    chosen: list[str] = []
    for train, test in splits:
        model = train_classifier(frame.iloc[train], y[train], spec, config)
        p = model.predict_proba(frame.iloc[test])
        out_of_fold[test] = p
        per_fold.append(classification_metrics(y[test], p))
        chosen.append(model.name)
    summary = summarize_folds(per_fold, CV_METRICS)
    return {
        **summary,
        "folds": folds,
        "per_fold": per_fold,
        "pooled": classification_metrics(y, out_of_fold),
        "chosen": chosen,
        "rows": len(y),
        "positives": int(y.sum()),
        "out_of_fold": out_of_fold,
    }
