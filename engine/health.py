"""Six-factor health score (DESIGN.md section 5): factor sub-scores, weighted health, band, trend, drivers.

Pure and vectorized: one call scores every account at once with numpy, because the nightly rescoring runs over
the whole customer base and a per-account Python loop would dominate its cost (the target is >= 1M accounts/s).

Scoring in three steps:

1. **Sub-scores.** Each account metric (engine.canonical.METRIC_COLUMNS) is mapped to 0-100 by a
   piecewise-linear curve through the breakpoints of its range table in the config (engine/health.yaml,
   ``curves``; the values of ``np.interp``, computed so they are exactly monotonic, see ``Curve.evaluate``).
   Curves are non-decreasing in the "good" direction of their metric and clamp outside their breakpoints, so
   extreme or negative inputs still land in 0-100. The breakpoints follow the tiers of DESIGN section 5 (e.g.
   core adoption 80 % -> 90, 60 % -> 70, 40 % -> 50), so a value at the lower edge of a tier scores the bottom
   of that tier's range.
2. **Factors.** A factor is the weighted mean of its sub-scores that have data (inner weights in the same
   tables); NaN sub-metrics are left out and the rest renormalized. A factor with no data at all is
   missing (NaN), not zero: absence of data is not evidence of bad health.
3. **Health.** The weighted mean of the present factors, with the configured weights renormalized over them;
   ``coverage`` says which share of the total weight had data. An account with no weighted factor at all gets
   health NaN and band NaN (not a band of its own: "unknown" is not a health level; its ``coverage`` is 0).
   Health is rounded to 1 decimal and the band taken from the rounded value, so they always agree on screen.

Also per account: trends against earlier scores, and the drivers (factors below the driver threshold that
cost the most points) with the recommended action of the first one. All outputs are computed for every factor
weight >= 0; a factor weighted 0 has no effect on health, coverage or drivers (it still shows its ``f_`` score
and counts in ``factors_present``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.canonical import BANDS_BEST_FIRST, FACTORS, Factor
from engine.curves import Curve
from engine.health_config import BandThresholds, HealthConfig, default_health_config

__all__ = [
    "BAND_CATEGORIES",
    "FACTOR_COLUMNS",
    "FACTOR_CURVES",
    "Curve",
    "actions",
    "assign_bands",
    "compute_factor_scores",
    "output_columns",
    "score_from_factors",
    "score_health",
]


# The curves live in the health config (engine/health.yaml, ``curves``) so an admin can change every range; this
# is the packaged default's, kept for callers that want the reference curves without loading a config.
FACTOR_CURVES: dict[Factor, tuple[Curve, ...]] = default_health_config().factor_curves

FACTOR_COLUMNS: dict[Factor, str] = {f: f"f_{f.value}" for f in FACTORS}
BAND_CATEGORIES: list[str] = [b.value for b in BANDS_BEST_FIRST]
_FACTOR_NAMES: list[str] = [f.value for f in FACTORS]


def _column(metrics: pd.DataFrame, name: str) -> np.ndarray:
    """A metric as float64 (NaN for missing values, or for a column the caller did not provide)."""
    if name not in metrics.columns:
        return np.full(len(metrics), np.nan)
    return metrics[name].to_numpy(dtype=np.float64, na_value=np.nan)


def compute_factor_scores(metrics: pd.DataFrame, config: HealthConfig | None = None) -> pd.DataFrame:
    """Factor sub-scores (0-100, NaN = no data) per account: columns = Factor values, same index as ``metrics``.

    Exposed separately so factor scores can be inspected or fed to ``score_from_factors`` on their own. The range
    tables are ``config``'s (the packaged default when None).
    """
    curves = (config or default_health_config()).factor_curves
    return pd.DataFrame(dict(zip(_FACTOR_NAMES, _factor_columns(metrics, curves), strict=True)), index=metrics.index)


# Everything below works on one 1-D array per factor rather than an (accounts x 6) matrix: numpy reduces and
# sorts tiny rows slowly (argsort over 6-wide rows alone cost ~60 ms per million accounts, the whole row-wise
# driver ranking ~190 ms), while column-wise ufuncs stream through memory.


def _factor_columns(metrics: pd.DataFrame, curves: dict[Factor, tuple[Curve, ...]]) -> list[np.ndarray]:
    n = len(metrics)
    out = []
    for factor in FACTORS:
        num = np.zeros(n)
        den = np.zeros(n)
        for curve in curves[factor]:
            x = _column(metrics, curve.metric)
            if curve.metric == "ttfv_days":
                # No first value yet: score as if it arrived today (see engine/health.yaml, curves.adoption).
                x = np.where(np.isnan(x), _column(metrics, "tenure_days"), x)
            s = curve.evaluate(x)
            num += _nan_to_zero(s) * curve.weight
            den += ~np.isnan(s) * curve.weight
        out.append(_ratio(num, den))
    return out


def _nan_to_zero(s: np.ndarray) -> np.ndarray:
    """NaN -> 0 for scores (>= 0). ``np.fmax`` ignores NaN and is ~10x faster than a masked ``where=`` op."""
    return np.fmax(s, 0.0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (then num is 0 too: nothing had data)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def assign_bands(health: np.ndarray | pd.Series, bands: BandThresholds) -> pd.Categorical:
    """Band per health value (lower bounds inclusive); NaN health gives a NaN band.

    Categories are the Band values, best first (unordered: compare bands by name, not by ``<``).
    """
    h = np.asarray(health, dtype=np.float64)
    # Code = number of lower bounds the value misses: 0 healthy .. 3 churning; NaN misses all, then set to -1.
    codes = np.full(h.shape, 3, dtype=np.int8)
    for bound in (bands.healthy, bands.at_risk, bands.critical):
        np.subtract(codes, h >= bound, out=codes, casting="unsafe")
    codes[np.isnan(h)] = -1
    return pd.Categorical.from_codes(codes, categories=BAND_CATEGORIES)


def output_columns(config: HealthConfig) -> list[str]:
    """Columns of ``score_health``'s result, in order (the driver count comes from the config)."""
    drivers = [f"driver_{i}" for i in range(1, config.drivers.count + 1)]
    return [
        "health",
        "band",
        *FACTOR_COLUMNS.values(),
        "coverage",
        "factors_present",
        "trend_7d",
        "trend_30d",
        *drivers,
        "recommended_action",
    ]


def score_health(metrics: pd.DataFrame, config: HealthConfig, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score every account in ``metrics`` (index = account id, columns = METRIC_COLUMNS keys, NaN = no data).

    ``previous`` (optional, indexed by account) may hold ``health_7d_ago`` / ``health_30d_ago`` for the trends.
    Returns one row per account, same index, with the columns of ``output_columns(config)``.
    """
    return _score(_factor_columns(metrics, config.factor_curves), metrics.index, config, previous)


def score_from_factors(
    factors: pd.DataFrame, config: HealthConfig, previous: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Like ``score_health`` but from factor scores (columns = Factor values, 0-100, NaN = no data).

    Missing factor columns count as no data; values are clipped to 0-100. Useful when factor scores come from
    elsewhere, and for testing the weighting independently of the metric curves.
    """
    columns = [np.clip(_column(factors, name), 0.0, 100.0) for name in _FACTOR_NAMES]
    return _score(columns, factors.index, config, previous)


def _score(f: list[np.ndarray], index: pd.Index, config: HealthConfig, previous: pd.DataFrame | None) -> pd.DataFrame:
    n = len(index)
    weights = config.weights.as_dict()
    w = [weights[fac] for fac in FACTORS]
    num = np.zeros(n)
    den = np.zeros(n)
    present = np.zeros(n, dtype=np.int64)
    for f_j, w_j in zip(f, w, strict=True):
        has = ~np.isnan(f_j)
        present += has
        if w_j > 0:
            num += _nan_to_zero(f_j) * w_j
            den += has * w_j
    # Round first, then band, so the band always agrees with the displayed score (79.96 shows as 80.0 healthy).
    health = np.round(np.clip(_ratio(num, den), 0.0, 100.0), 1)

    data: dict[str, object] = {"health": health, "band": assign_bands(health, config.bands)}
    for fac, f_j in zip(FACTORS, f, strict=True):
        data[FACTOR_COLUMNS[fac]] = np.round(f_j, 1)
    data["coverage"] = den / sum(w)
    data["factors_present"] = present
    for col, prev_col in (("trend_7d", "health_7d_ago"), ("trend_30d", "health_30d_ago")):
        data[col] = np.round(health - _previous(previous, prev_col, index), 1)

    top = _drivers(f, w, config.drivers.threshold, config.drivers.count)
    for i, codes in enumerate(top, start=1):
        data[f"driver_{i}"] = pd.Categorical.from_codes(codes, categories=_FACTOR_NAMES)
    data["recommended_action"] = _recommended_action(top[0], config)
    return pd.DataFrame(data, index=index)


def _previous(previous: pd.DataFrame | None, column: str, index: pd.Index) -> np.ndarray:
    if previous is None or column not in previous.columns:
        return np.full(len(index), np.nan)
    series = previous[column]
    if not series.index.equals(index):
        series = series.reindex(index)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _drivers(f: list[np.ndarray], w: list[float], threshold: float, count: int) -> list[np.ndarray]:
    """Factor codes (one int8 array per rank, ``count`` of them) of the factors pulling scores down most.

    A driver is a present, weighted factor scoring below the threshold, ranked by the points it costs:
    renormalized weight x (100 - score). Renormalizing divides a whole row by one positive number, so ranking
    by weight x (100 - score) is the same and cheaper. Ties keep canonical factor order. Code -1 = no driver.

    Vectorized as a rank computation over the six factor columns (each factor's rank = how many others cost
    more, or as much and come earlier), which is several times faster than ``np.argsort`` over 6-wide rows.
    """
    n = len(f[0]) if f else 0
    cost = []
    for f_j, w_j in zip(f, w, strict=True):
        # Drivers cost > 0 (score < threshold <= 100, weight > 0); everything else costs exactly 0.
        # f < threshold is False for NaN, and the NaN cost itself is zeroed first (NaN * False is NaN).
        c = _nan_to_zero((100.0 - f_j) * w_j) * (f_j < threshold) if w_j > 0 else np.zeros(n)
        cost.append(c)
    # Booleans viewed as int8 (0/1) so counting and selecting stay plain integer arithmetic: masked ops
    # (np.where / where=) on random masks are an order of magnitude slower.
    valid = [(c > 0).view(np.int8) for c in cost]
    ranks = []
    for j, c_j in enumerate(cost):
        r = np.zeros(n, dtype=np.int8)
        for k, c_k in enumerate(cost):
            if k != j:
                r += ((c_k >= c_j) if k < j else (c_k > c_j)).view(np.int8)
        ranks.append(r)
    top = []
    for i in range(count):
        # Exactly one factor holds rank i, so summing (code + 1) over the valid holders selects it (0 = none).
        codes = np.full(n, -1, dtype=np.int8)
        for j, (r, v) in enumerate(zip(ranks, valid, strict=True)):
            codes += ((r == i).view(np.int8) & v) * np.int8(j + 1)
        top.append(codes)
    return top


def _recommended_action(top: np.ndarray, config: HealthConfig) -> pd.Categorical:
    texts = config.actions.as_dict()
    categories = list(dict.fromkeys(texts[fac] for fac in FACTORS))  # unique: two factors may share a text
    factor_to_code = np.array([categories.index(texts[fac]) for fac in FACTORS], dtype=np.int8)
    codes = np.where(top >= 0, factor_to_code[np.maximum(top, 0)], -1).astype(np.int8)
    return pd.Categorical.from_codes(codes, categories=categories)


def actions(row: pd.Series, config: HealthConfig) -> list[str]:
    """Action texts for all drivers of one scored row (a row of ``score_health``'s result), best first.

    For display only (one account at a time); bulk consumers should use the ``recommended_action`` column.
    """
    texts = config.actions.as_dict()
    out: list[str] = []
    for i in range(1, len(FACTORS) + 1):
        value = row.get(f"driver_{i}")
        if value is None or pd.isna(value):
            continue
        out.append(texts[Factor(value)])
    return out
