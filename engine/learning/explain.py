"""Per-account risk drivers, computed from the model itself rather than from a fixed list.

A driver is a feature whose value, for this account, moves the predicted churn log-odds away from those of a
typical account (the training medians / most frequent categories kept in the model). Two exact-enough methods:

* **Logistic regression** (the linear candidate): the contribution of feature j is
  ``calibration slope × Σ coef_k × (x_k − ref_k)`` over the model columns k built from j (the standardized value,
  its missing indicator, its one-hot columns). The contributions add up exactly to the account's log-odds minus
  the typical account's, so they are the model's own arithmetic, not an approximation.
* **Gradient boosting** (sklearn's HistGradientBoosting, numeric splits): Saabas path attribution
  (engine.learning.tree_paths): along the account's path through every tree, each split's change in expected value
  is credited to the feature split on. The credits add up exactly to the account's calibrated log-odds minus the
  trees' expected log-odds. Leaves are found for all accounts and trees at once in NumPy, and the log-odds come
  out of the same pass.
* **Any other model**: occlusion. Feature j's contribution is the drop in calibrated log-odds
  when j alone is set to its typical value, i.e. "how much lower would the risk be if this were normal". It
  captures non-linear effects honestly; with interactions the parts need not add up exactly.

Either way a driver changes when the account's feature changes, and the effect's sign says whether the feature
raises or lowers the risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from engine.learning import tree_paths
from engine.learning.models import LOGIT_LIMIT, BinaryModel
from engine.learning.preprocess import prepare_frame

# Rows (accounts x features) scored per estimator call when occluding: bounds memory at ~100 MB per chunk.
OCCLUSION_BATCH_ROWS = 150_000


def _output_groups(model: BinaryModel) -> np.ndarray:
    """For each column the preprocessor outputs, the index (in spec.columns) of the feature it came from."""
    spec = model.spec
    pre = model.pipeline.named_steps["pre"]
    names = pre.get_feature_names_out()
    position = {name: i for i, name in enumerate(spec.columns)}
    groups = np.empty(len(names), dtype=np.int64)
    cat_offsets: list[int] = []
    if spec.categorical:
        encoder = pre.named_transformers_["cat"]
        for i, categories in enumerate(encoder.categories_):
            cat_offsets += [position[spec.categorical[i]]] * len(categories)
    cat_iter = iter(cat_offsets)
    for k, name in enumerate(names):
        block, _, rest = name.partition("__")
        if block == "num":
            feature = rest.removeprefix("missingindicator_")
            groups[k] = position[feature]
        else:
            groups[k] = next(cat_iter)
    return groups


def _reference_frame(model: BinaryModel, index: pd.Index | None = None) -> pd.DataFrame:
    ref = {name: [model.reference.get(name)] for name in model.spec.columns}
    frame = pd.DataFrame(ref)
    return prepare_frame(frame, model.spec)


def contributions(model: BinaryModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Log-odds contribution of every feature for every row of `frame` (columns = spec.columns, same index)."""
    return _explained(model, frame)[0]


def _explained(model: BinaryModel, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The contributions, and the calibrated log-odds when the method yields them exactly on the way (tree paths
    add up the leaf values the estimator adds, so a second pass through the trees is not needed); else None."""
    spec = model.spec
    X = prepare_frame(frame, spec)  # noqa: N806
    estimator = model.pipeline.named_steps["model"]
    slope = model.calibration[0]
    if isinstance(estimator, LogisticRegression):
        xt = model.model_matrix(X)
        ref = model.model_matrix(_reference_frame(model))
        parts = (xt - ref) * (estimator.coef_[0] * slope)
        groups = _output_groups(model)
        out = np.zeros((len(X), len(spec.columns)))
        for k in range(parts.shape[1]):  # a few dozen columns; each add is vectorized over accounts
            out[:, groups[k]] += parts[:, k]
        return pd.DataFrame(out, index=frame.index, columns=spec.columns), None
    if tree_paths.supports(estimator):
        return _tree_paths(model, X, frame.index)
    return _occlusion(model, X, frame.index), None


def _tree_paths(model: BinaryModel, X: pd.DataFrame, index: pd.Index) -> tuple[pd.DataFrame, np.ndarray]:  # noqa: N803
    """Saabas credits per feature (model-matrix columns summed per feature, scaled by the calibration slope),
    and the calibrated log-odds from the same leaves."""
    estimator = model.pipeline.named_steps["model"]
    groups = _output_groups(model)
    to_feature = np.zeros((len(groups), len(model.spec.columns)))
    to_feature[np.arange(len(groups)), groups] = model.calibration[0]
    credits, raw = tree_paths.path_contributions(tree_paths.tree_table(estimator), model.model_matrix(X), to_feature)
    a, b = model.calibration
    logit = a * np.clip(raw, -LOGIT_LIMIT, LOGIT_LIMIT) + b
    return pd.DataFrame(credits, index=index, columns=model.spec.columns), logit


def _occlusion(model: BinaryModel, X: pd.DataFrame, index: pd.Index) -> pd.DataFrame:  # noqa: N803
    """Occlusion in the model matrix: feature j's columns (value, indicator, one-hot) set to the reference's.

    The preprocessing is column-separable, so this equals re-running the pipeline with the raw feature set to its
    typical value, but every variant of a chunk of accounts is scored in one call of the estimator.
    """
    spec = model.spec
    xt = model.model_matrix(X)
    ref = model.model_matrix(_reference_frame(model))[0]
    groups = _output_groups(model)
    columns = [np.flatnonzero(groups == j) for j in range(len(spec.columns))]
    a, b = model.calibration
    estimator = model.pipeline.named_steps["model"]
    out = np.zeros((len(X), len(spec.columns)))
    if not len(X):
        return pd.DataFrame(out, index=index, columns=spec.columns)
    base = a * np.clip(estimator.decision_function(xt), -LOGIT_LIMIT, LOGIT_LIMIT) + b
    # Only rows whose feature differs from the reference can have a contribution: a count that is 0 like the
    # typical account's contributes exactly 0, and is not re-scored. Variants are scored in bounded batches.
    pending: list[tuple[int, np.ndarray]] = []
    for j, cols in enumerate(columns):
        rows = np.flatnonzero((xt[:, cols] != ref[cols]).any(axis=1))
        for start in range(0, len(rows), OCCLUSION_BATCH_ROWS):
            pending.append((j, rows[start : start + OCCLUSION_BATCH_ROWS]))
    batch: list[tuple[int, np.ndarray]] = []
    size = 0
    for item in [*pending, None]:
        if item is not None and size + len(item[1]) <= OCCLUSION_BATCH_ROWS:
            batch.append(item)
            size += len(item[1])
            continue
        if batch:
            stacked = np.concatenate([xt[rows] for _, rows in batch])
            offset = 0
            for j, rows in batch:
                stacked[offset : offset + len(rows)][:, columns[j]] = ref[columns[j]]
                offset += len(rows)
            z = a * np.clip(estimator.decision_function(stacked), -LOGIT_LIMIT, LOGIT_LIMIT) + b
            offset = 0
            for j, rows in batch:
                out[rows, j] = base[rows] - z[offset : offset + len(rows)]
                offset += len(rows)
        batch, size = ([item], len(item[1])) if item is not None else ([], 0)
    return pd.DataFrame(out, index=index, columns=spec.columns)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def top_drivers(
    model: BinaryModel,
    frame: pd.DataFrame,
    contrib: pd.DataFrame | None = None,
    count: int = 3,
    probability: np.ndarray | None = None,
    min_effect: float = 0.05,
) -> list[list[dict[str, Any]]]:
    """The `count` features raising each account's churn risk most, largest first.

    Each driver: feature key, label, the account's value, the typical value, ``relation`` (the value is higher,
    lower, missing or a different category than typical), ``effect`` (log-odds added), ``points`` (percentage
    points of churn probability the feature adds over its typical value) and direction ``raises``. Features
    lowering the risk are not drivers; contributions below `min_effect` log-odds are noise.
    """
    exact_logit = None
    if contrib is None:
        contrib, exact_logit = _explained(model, frame)
    spec = model.spec
    values = contrib.to_numpy()
    if probability is None:
        probability = _sigmoid(exact_logit) if exact_logit is not None else model.predict_proba(frame)
    logit = np.log(np.clip(probability, 1e-9, 1 - 1e-9) / np.clip(1 - probability, 1e-9, 1))
    k = min(count, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    effects = np.take_along_axis(values, order, axis=1)
    points = 100.0 * (probability[:, None] - _sigmoid(logit[:, None] - effects))
    # Ranks are cut at the first effect below min_effect (they are sorted, so the rest are below it too).
    kept = np.logical_and.accumulate(~(effects < min_effect), axis=1).sum(axis=1).tolist()
    X = prepare_frame(frame, spec)  # noqa: N806
    ranks = [_rank_records(model, X, order[:, r], effects[:, r], points[:, r]) for r in range(k)]
    return [list(row[:m]) for row, m in zip(zip(*ranks, strict=True), kept, strict=True)] if k else [[] for _ in kept]


def _rank_records(model: BinaryModel, X: pd.DataFrame, feature: np.ndarray, effect: np.ndarray,
                  points: np.ndarray) -> list[dict[str, Any]]:  # noqa: N803  # fmt: skip
    """The driver record of one rank for every account, each field computed for all accounts at once; only the
    dicts themselves are built one per account."""
    spec = model.spec
    rows = np.arange(len(X))
    numeric = feature < len(spec.numeric)  # spec.columns: the numeric features, then the categorical ones
    number = X[list(spec.numeric)].to_numpy(dtype=float) if spec.numeric else np.empty((len(X), 0))
    picked = number[rows[numeric], feature[numeric]]
    typical = [model.reference.get(name) for name in spec.columns]
    numeric_typical = np.array([float(t) if _is_number(t) else np.nan for t in typical])
    comparable = np.array([_is_number(t) for t in typical])[feature[numeric]]
    ref = numeric_typical[feature[numeric]]
    relation = np.full(len(X), "different", dtype=object)
    relation[numeric] = np.where(
        np.isnan(picked), "missing",
        np.where(~comparable, "different", np.where(picked > ref, "higher", np.where(picked < ref, "lower", "same"))),
    )  # fmt: skip
    value = np.empty(len(X), dtype=object)
    value[numeric] = np.where(np.isnan(picked), None, np.round(picked, 3).astype(object))
    if spec.categorical:
        categories = X[list(spec.categorical)].to_numpy(dtype=object)
        other = ~numeric
        value[other] = categories[rows[other], feature[other] - len(spec.numeric)]
    names = np.array(spec.columns, dtype=object)[feature].tolist()
    labels = np.array([spec.label(name) for name in spec.columns], dtype=object)[feature].tolist()
    plain_typical = np.array([_plain(t) for t in typical], dtype=object)[feature].tolist()
    return [
        {"feature": f, "label": la, "value": v, "typical": t, "effect": e, "points": p, "direction": "raises",
         "relation": r}
        for f, la, v, t, e, p, r in zip(names, labels, value.tolist(), plain_typical,
                                        np.round(effect, 3).tolist(), np.round(points, 1).tolist(),
                                        relation.tolist(), strict=True)
    ]  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number))


def _plain(value: Any) -> Any:
    """JSON-ready value: floats rounded, NaN as None."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else round(float(value), 3)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def global_importance(contrib: pd.DataFrame, model: BinaryModel) -> pd.DataFrame:
    """Mean absolute contribution per feature over a set of accounts, largest first (for the report)."""
    mean_abs = contrib.abs().mean().sort_values(ascending=False)
    return pd.DataFrame(
        {
            "feature": mean_abs.index,
            "label": [model.spec.label(n) for n in mean_abs.index],
            "mean_abs_effect": mean_abs.to_numpy(),
        }
    )
