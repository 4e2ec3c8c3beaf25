"""Time to churn: a ridge-penalized Cox proportional-hazards model and Harrell's concordance index.

Why Cox and why here: the classifier answers "will this account churn within the horizon"; a CSM also asks
"when". Cox uses every account, including those still active at the end of the data (censored), and gives a
survival curve per account from which the median time to churn is read. It is a few dozen lines of NumPy
(Breslow partial likelihood, L-BFGS), so no survival library is needed, and it shares the classifier's
preprocessing (imputation, indicators, scaling, one-hot) so it reads the same features.

Concordance (C-index) is the survival analogue of ROC-AUC: the share of comparable pairs (one account churned
before the other's time) where the earlier churner had the higher risk. 0.5 is random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from engine.learning.preprocess import FeatureSpec, FrameSelector, make_preprocessor


def _partial_likelihood(
    beta: np.ndarray, x: np.ndarray, events: np.ndarray, last: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """Negative mean Breslow partial log-likelihood and its gradient; rows sorted by time descending.

    `last[i]` is the last row (in that order) whose time is >= row i's time, so cumulative sums up to it are the
    risk set of row i, ties included (Breslow).
    """
    eta = x @ beta
    shift = eta.max()
    w = np.exp(eta - shift)
    # Only the rows with an event add to the likelihood: the risk sets are gathered for those alone (churn is a
    # few per cent of a panel's rows), not for every row and then multiplied by a zero.
    at = np.flatnonzero(events)
    ends = last[at]
    risk = np.cumsum(w)[ends]
    # The weighted rows summed between consecutive risk-set ends, then cumulated over those few sums: a cumulative
    # sum over every row of the n x p matrix, gathered at the ends, was ~2.5x the time (the Cox fit is in every
    # model refresh).
    cuts, of_event = np.unique(ends, return_inverse=True)
    stop = cuts[-1] + 1 if len(cuts) else 0
    blocks = np.add.reduceat(w[:stop, None] * x[:stop], np.r_[0, cuts[:-1] + 1], axis=0) if stop else x[:0]
    risk_x = np.cumsum(blocks, axis=0)[of_event]
    n = len(eta)
    loglik = np.sum(events[at] * (eta[at] - shift - np.log(risk)))
    grad = np.sum(events[at, None] * (x[at] - risk_x / risk[:, None]), axis=0)
    return -loglik / n + 0.5 * l2 * beta @ beta, -grad / n + l2 * beta


@dataclass
class SurvivalModel:
    """A fitted Cox model: risk = exp(x·beta); survival S(t|x) = exp(-H0(t) · risk)."""

    spec: FeatureSpec
    transform: Pipeline
    beta: np.ndarray
    times: np.ndarray  # distinct event times, ascending
    baseline_cumhaz: np.ndarray  # H0 at those times
    time_unit: str = "days"
    max_time: float = float("nan")  # longest follow-up seen in training

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        """Log relative hazard (x·beta) per row; higher = churns sooner."""
        return self.transform.transform(frame) @ self.beta

    def survival_at(self, frame: pd.DataFrame, t: float) -> np.ndarray:
        """Probability of still being a customer `t` time units after the observation."""
        h0 = np.interp(t, self.times, self.baseline_cumhaz, left=0.0) if len(self.times) else 0.0
        return np.exp(-h0 * np.exp(self.risk(frame)))

    def median_time(self, frame: pd.DataFrame) -> np.ndarray:
        """Median time to churn per row: first event time where S(t) <= 0.5; NaN beyond the data's follow-up."""
        if not len(self.times):
            return np.full(len(frame), np.nan)
        # S(t) <= 0.5  <=>  H0(t) >= ln 2 / exp(risk); H0 is non-decreasing, so a sorted search finds t.
        needed = np.log(2.0) / np.exp(self.risk(frame))
        idx = np.searchsorted(self.baseline_cumhaz, needed, side="left")
        out = np.full(len(frame), np.nan)
        reached = idx < len(self.times)
        out[reached] = self.times[idx[reached]]
        return out


def fit_survival(
    frame: pd.DataFrame,
    durations: np.ndarray | pd.Series,
    events: np.ndarray | pd.Series,
    spec: FeatureSpec,
    l2: float = 0.01,
    time_unit: str = "days",
    threads: int | None = 1,
) -> SurvivalModel:
    """Fit a ridge-penalized Cox model on `spec`'s features; `events` 1 = churned, 0 = censored at `durations`.

    `threads` caps the BLAS threads of the fit, one by default as for the classifiers (TrainConfig.threads): each
    iteration is a few small matrix products, and on a shared 2-core machine a second BLAS thread waiting for a
    core made the fit 3x slower in wall time and 2x in CPU.
    """
    with threadpool_limits(limits=threads):
        return _fit_survival(frame, durations, events, spec, l2, time_unit)


def _fit_survival(
    frame: pd.DataFrame,
    durations: np.ndarray | pd.Series,
    events: np.ndarray | pd.Series,
    spec: FeatureSpec,
    l2: float,
    time_unit: str,
) -> SurvivalModel:
    t = np.asarray(durations, dtype="float64")
    e = np.asarray(events, dtype="float64")
    keep = np.isfinite(t) & (t >= 0)
    frame, t, e = frame.iloc[np.flatnonzero(keep)], t[keep], e[keep]
    pre: ColumnTransformer = make_preprocessor(spec)
    transform = Pipeline([("frame", FrameSelector(spec)), ("pre", pre)])
    x = np.asarray(transform.fit_transform(frame), dtype="float64")
    order = np.argsort(-t, kind="stable")
    x, t_sorted, e_sorted = x[order], t[order], e[order]
    last = np.searchsorted(-t_sorted, -t_sorted, side="right") - 1
    result = minimize(
        _partial_likelihood, np.zeros(x.shape[1]), args=(x, e_sorted, last, l2), jac=True, method="L-BFGS-B"
    )
    beta = result.x
    # Breslow baseline cumulative hazard: at each distinct event time, events / sum of risks of those at risk.
    w = np.exp(x @ beta)
    risk_sum = np.cumsum(w)[last]
    times = np.unique(t_sorted[e_sorted > 0])
    increments = []
    for time in times:  # distinct event times: a few hundred at most (days, months)
        at = (t_sorted == time) & (e_sorted > 0)
        increments.append(at.sum() / risk_sum[np.flatnonzero(at)[0]])
    cumhaz = np.cumsum(increments) if increments else np.zeros(0)
    return SurvivalModel(spec, transform, beta, times, np.asarray(cumhaz), time_unit, float(t.max()))


def concordance_index(durations: np.ndarray, events: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C: share of comparable pairs ordered correctly by `risk` (ties in risk count half).

    A pair (i, j) is comparable when i churned (event) and T_i < T_j, or T_i == T_j and j did not churn (the
    scikit-survival convention). O(n log n): rows are visited by time, descending, and a Fenwick tree over risk
    ranks counts how many later rows have a lower risk.
    """
    t = np.asarray(durations, dtype="float64")
    e = np.asarray(events, dtype="bool")
    r = np.asarray(risk, dtype="float64")
    if len(t) < 2 or not e.any():
        return float("nan")
    ranks = np.unique(r, return_inverse=True)[1] + 1  # 1-based, ties share a rank
    size = int(ranks.max())
    tree = np.zeros(size + 1, dtype=np.int64)

    def add(idx: np.ndarray) -> None:
        idx = idx.copy()
        while len(idx):
            np.add.at(tree, idx, 1)
            idx = idx + (idx & -idx)
            idx = idx[idx <= size]

    def count_le(idx: np.ndarray) -> np.ndarray:
        """Rows in the tree with rank <= idx."""
        idx = idx.copy()
        total = np.zeros(len(idx), dtype=np.int64)
        while (idx > 0).any():
            total += tree[idx]
            idx = idx - (idx & -idx)
        return total

    concordant = 0.0
    comparable = 0
    inserted = 0
    order = np.argsort(-t, kind="stable")
    t_sorted = t[order]
    bounds = np.flatnonzero(np.r_[True, t_sorted[1:] != t_sorted[:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        group = order[start:stop]
        ev = group[e[group]]
        if len(ev):
            # Rows with a later time (already in the tree).
            lower = count_le(ranks[ev] - 1)
            equal = count_le(ranks[ev]) - lower
            concordant += lower.sum() + 0.5 * equal.sum()
            comparable += inserted * len(ev)
            # Censored rows at the same time.
            cens = group[~e[group]]
            if len(cens):
                cr = np.sort(ranks[cens])
                lower_c = np.searchsorted(cr, ranks[ev], side="left")
                equal_c = np.searchsorted(cr, ranks[ev], side="right") - lower_c
                concordant += lower_c.sum() + 0.5 * equal_c.sum()
                comparable += len(cens) * len(ev)
        add(ranks[group])
        inserted += len(group)
    return float(concordant / comparable) if comparable else float("nan")


def cross_validate_survival(
    frame: pd.DataFrame,
    durations: np.ndarray,
    events: np.ndarray,
    spec: FeatureSpec,
    folds: int = 5,
    seed: int = 0,
    l2: float = 0.01,
) -> dict[str, float]:
    """Concordance of the Cox model on held-out folds (stratified by event), mean and SD."""
    from sklearn.model_selection import StratifiedKFold

    t = np.asarray(durations, dtype="float64")
    e = np.asarray(events, dtype="int64")
    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(e)), e):
        model = fit_survival(frame.iloc[train], t[train], e[train], spec, l2)
        scores.append(concordance_index(t[test], e[test], model.risk(frame.iloc[test])))
    return {"concordance": float(np.mean(scores)), "concordance_sd": float(np.std(scores)), "folds": folds}
