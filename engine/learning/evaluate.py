"""How good a churn model is, in the terms a CS team acts on.

ROC-AUC says how well accounts are ranked; PR-AUC how clean the at-risk list is when churn is rare; the Brier
score and the calibration table whether "30 %" really means 30 %; top-decile lift how much better the top 10 % of
the list is than a random pick; and lead time how many days before churning an account was first flagged, which
is what decides whether a CSM still had time to act.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve


def top_fraction_lift(y: np.ndarray, p: np.ndarray, fraction: float = 0.1) -> float:
    """Churn rate among the `fraction` highest-scored accounts divided by the overall churn rate.

    Ties at the cut are broken by a stable sort on the score, so the result is deterministic.
    """
    y = np.asarray(y, dtype="float64")
    base = y.mean() if len(y) else float("nan")
    if not len(y) or base == 0:
        return float("nan")
    k = max(1, int(math.ceil(fraction * len(y))))
    top = np.argsort(-np.asarray(p, dtype="float64"), kind="stable")[:k]
    return float(y[top].mean() / base)


def classification_metrics(y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier, log loss, top-decile lift, base rate and counts."""
    y = np.asarray(y, dtype="int64")
    p = np.clip(np.asarray(p, dtype="float64"), 1e-9, 1 - 1e-9)
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "top_decile_lift": top_fraction_lift(y, p, 0.1),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_predicted": float(p.mean()) if len(y) else float("nan"),
        "rows": int(len(y)),
        "positives": int(y.sum()),
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed churn rate against the mean predicted probability per bin of equal size (deciles by default).

    Equal-count bins rather than fixed-width ones: with rare churn most accounts sit below 10 %, and fixed bins
    would leave the upper ones nearly empty.
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    if not len(y):
        return pd.DataFrame(columns=["bin", "rows", "mean_predicted", "observed_rate", "min_p", "max_p"])
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    rows = [
        {
            "bin": i + 1,
            "rows": len(g),
            "mean_predicted": float(p[g].mean()),
            "observed_rate": float(y[g].mean()),
            "min_p": float(p[g].min()),
            "max_p": float(p[g].max()),
        }
        for i, g in enumerate(groups)
        if len(g)
    ]
    return pd.DataFrame(rows)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Row-weighted mean |observed − predicted| over the calibration table's bins."""
    if table.empty:
        return float("nan")
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float((gap * table["rows"]).sum() / table["rows"].sum())


def lift_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Churn rate and lift per score decile, highest scores first (decile 1 = the top 10 %)."""
    y = np.asarray(y, dtype="float64")
    base = y.mean() if len(y) else float("nan")
    order = np.argsort(-np.asarray(p, dtype="float64"), kind="stable")
    rows = []
    captured = 0.0
    for i, g in enumerate(np.array_split(order, min(bins, max(len(order), 1)))):
        if not len(g):
            continue
        captured += y[g].sum()
        rows.append(
            {
                "decile": i + 1,
                "rows": len(g),
                "churn_rate": float(y[g].mean()),
                "lift": float(y[g].mean() / base) if base else float("nan"),
                "cumulative_capture": float(captured / y.sum()) if y.sum() else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """False and true positive rates along the ROC curve, thinned to at most `max_points` for plotting."""
    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(p))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})


def lead_time(
    scores: pd.DataFrame,
    churned_at: pd.Series,
    threshold: float,
    max_lead_days: int | None = None,
) -> dict[str, object]:
    """How many days before churning each churner was first flagged (probability >= threshold).

    `scores` has one row per (account_id, as_of) with column `p`; `churned_at` maps account id to churn date (NaT
    for accounts that did not churn). For every account that churned after its first scored date, the flag that
    counts is the start of the *last unbroken run* of flagged observations before the churn date: an alarm that
    went quiet again was not the warning the CSM acted on. Accounts never flagged before churning count as missed.
    `max_lead_days` ignores observations further back than that (e.g. the model horizon).
    """
    frame = scores[["account_id", "as_of", "p"]].copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    churn = pd.to_datetime(churned_at).rename("churned_at")
    frame = frame.join(churn, on="account_id")
    frame = frame[frame["churned_at"].notna() & (frame["as_of"] < frame["churned_at"])]
    if max_lead_days is not None:
        frame = frame[(frame["churned_at"] - frame["as_of"]).dt.days <= max_lead_days]
    if frame.empty:
        return {"churners": 0, "flagged": 0, "flagged_share": float("nan"), "median_days": float("nan"),
                "mean_days": float("nan"), "p25_days": float("nan"), "p75_days": float("nan"), "threshold": threshold,
                "days": []}  # fmt: skip
    frame = frame.sort_values(["account_id", "as_of"], ascending=[True, False], kind="stable")
    # Walking back from the churn date, a run ends at the first unflagged observation of the account.
    flagged = (frame["p"] >= threshold).astype("int8")
    in_run = frame[flagged.groupby(frame["account_id"]).cumprod().astype(bool)]
    lead = (in_run.groupby("account_id")["churned_at"].first() - in_run.groupby("account_id")["as_of"].min()).dt.days
    churners = frame["account_id"].nunique()
    days = lead.to_numpy(dtype="float64")
    return {
        "churners": int(churners),
        "flagged": int(len(days)),
        "flagged_share": float(len(days) / churners) if churners else float("nan"),
        "median_days": float(np.median(days)) if len(days) else float("nan"),
        "mean_days": float(days.mean()) if len(days) else float("nan"),
        "p25_days": float(np.percentile(days, 25)) if len(days) else float("nan"),
        "p75_days": float(np.percentile(days, 75)) if len(days) else float("nan"),
        "threshold": float(threshold),
        "days": sorted(int(d) for d in days),
    }


def summarize_folds(folds: list[dict[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """Mean and standard deviation over folds of each metric in `keys` (`<key>` and `<key>_sd`)."""
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([f[key] for f in folds], dtype="float64")
        out[key] = float(np.nanmean(values))
        out[f"{key}_sd"] = float(np.nanstd(values))
    return out


def early_warning(
    scores: pd.DataFrame,
    churned_at: pd.Series,
    threshold: float,
    *,
    lead_window_days: int | None = None,
    survivors_until: pd.Timestamp | None = None,
    customer_since: pd.Series | None = None,
    horizon_days: int | None = None,
) -> dict[str, object]:
    """Lead time of the flag before churn, with the share of churners flagged and of survivors falsely flagged.

    ``scores`` has (account_id, as_of, p) rows on the evaluation dates. Same lead-time rule as ``lead_time``.

    * ``lead_window_days``: only churners that churned at least this long after the first evaluation date count,
      and leads are capped at it, so every churner had the same chance to be warned early (a churner in the
      first weeks of the period could only ever show a short lead). With ``customer_since`` a churner must also
      have been a customer for the whole window: the ones that left younger than that (onboarding churn) are
      reported apart, since no one could have warned of them that early;
    * a survivor has no churn date; it is falsely flagged when flagged on any date up to ``survivors_until``
      (the last date whose horizon has passed: a later flag may still come true);
    * with ``horizon_days``, ``precision`` is the share of flags (account and date, up to ``survivors_until``)
      followed by churn within the horizon.
    """
    frame = scores[["account_id", "as_of", "p"]].copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    churn = pd.to_datetime(churned_at)
    eligible = churn.dropna()
    young = eligible.iloc[:0]
    if lead_window_days is not None and len(frame):
        window = pd.Timedelta(days=lead_window_days)
        eligible = eligible[eligible >= frame["as_of"].min() + window]
        if customer_since is not None:
            since = pd.to_datetime(customer_since).reindex(eligible.index)
            young = eligible[(since > eligible - window).to_numpy()]
            eligible = eligible.drop(young.index)
    lead = lead_time(frame, eligible.reindex(churn.index), threshold, lead_window_days)
    young_lead = lead_time(frame, young.reindex(churn.index), threshold, lead_window_days)
    until = frame if survivors_until is None else frame[frame["as_of"] <= pd.Timestamp(survivors_until)]
    survivors = until[until["account_id"].map(churn).isna().to_numpy()]
    alarmed = survivors.loc[survivors["p"] >= threshold, "account_id"].nunique()
    n_survivors = survivors["account_id"].nunique()
    report: dict[str, object] = {
        "threshold": float(threshold),
        "churners": lead["churners"],
        "lead_days_median": lead["median_days"],
        "lead_days_p25": lead["p25_days"],
        "lead_days_p75": lead["p75_days"],
        "lead_window_days": lead_window_days,
        "flagged_churners_share": lead["flagged_share"],
        "survivors": int(n_survivors),
        "false_alarm_share": float(alarmed / n_survivors) if n_survivors else float("nan"),
        "young_churners": young_lead["churners"],
        "young_flagged_share": young_lead["flagged_share"],
        "young_lead_days_median": young_lead["median_days"],
        "lead_days": lead["days"],
    }
    if horizon_days is not None:
        flags = until[until["p"] >= threshold]
        ahead = flags["account_id"].map(churn) - flags["as_of"]
        came_true = (ahead > pd.Timedelta(0)) & (ahead <= pd.Timedelta(days=horizon_days))
        report["precision"] = float(came_true.mean()) if len(flags) else float("nan")
    return report
