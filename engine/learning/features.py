"""Point-in-time churn features from an account's metrics and windowed activity as of one observation date.

The store hands over two frames per observation date D, both indexed by account id and both computed from data
on or before D only:

* ``metrics``: the health metrics of app.store.metrics.account_metrics (engine.canonical.METRIC_COLUMNS plus the
  account attributes), the same numbers the health score sees;
* ``activity``: sums over three consecutive 30-day windows ending on D (``<metric>_w0`` is the last 30 days,
  ``_w1`` the 30 before, ``_w2`` the 30 before that), per-core-feature use flags for the last 30 days and the 60
  before, and the last login day (see ``ACTIVITY_COLUMNS``).

``build_features`` turns them into the model's feature matrix: usage levels per seat and their change over 30
and 60 days, login frequency change, core features abandoned, ticket spikes, escalations, survey scores, churn
signals, tenure, ARR, seats, days to renewal and the health factors.

Why some account fields are left out: a CRM keeps only the *current* value of fields such as active seats,
champion flags, ROI or goal attainment. For a past observation date that value is from the future (a churned
account shows zero active seats), so a model trained on it learns the outcome, not the warning signs.
``SNAPSHOT_METRICS`` lists those fields; ``point_in_time_metrics`` masks them (or rebuilds them from the activity
windows where possible) before the health factors are computed for training and for scoring alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

WINDOW_DAYS = 30
N_WINDOWS = 3
LOOKBACK_DAYS = WINDOW_DAYS * N_WINDOWS
# Capped so a silent account scores "at least this long", not NaN.
MAX_DAYS_SINCE_LOGIN = float(LOOKBACK_DAYS)

# Daily rollup columns summed per 30-day window (names follow app.store.models.AccountDay; active_days counts
# days with a login).
WINDOW_METRICS: tuple[str, ...] = (
    "logins", "session_minutes", "feature_uses", "api_calls", "tickets_opened", "escalations", "churn_signals",
    "survey_sum", "survey_count", "active_days", "outreach", "replies", "seat_delta", "plan_delta",
)  # fmt: skip
CORE_RECENT_PREFIX = "core_recent__"  # 1 if the core feature was used in the last 30 days
CORE_PRIOR_PREFIX = "core_prior__"  # 1 if it was used in the 60 days before those
LAST_LOGIN_COLUMN = "last_login_day"  # last day with a login within the lookback (NaT: none)

# Account fields that the CRM holds only as of today: unusable for a past observation date (see module doc).
SNAPSHOT_METRICS: tuple[str, ...] = (
    "active_user_share", "has_champion", "roi_pct", "goal_attainment", "tickets_per_seat_30d",
)  # fmt: skip
HEALTH_COLUMNS: tuple[str, ...] = (
    "health", "f_adoption", "f_engagement", "f_support", "f_outcomes", "f_relationship", "f_expansion",
)  # fmt: skip


def window_column(metric: str, window: int) -> str:
    """Name of the activity column holding `metric` summed over window `window` (0 = the last 30 days)."""
    return f"{metric}_w{window}"


def activity_columns(core_features: Sequence[str]) -> list[str]:
    """Every column ``build_features`` reads from the activity frame, for a product with these core features."""
    columns = [window_column(m, w) for m in WINDOW_METRICS for w in range(N_WINDOWS)]
    columns += [CORE_RECENT_PREFIX + k for k in core_features] + [CORE_PRIOR_PREFIX + k for k in core_features]
    return [*columns, LAST_LOGIN_COLUMN]


@dataclass(frozen=True)
class FeatureDef:
    """One model feature: its label for people reading drivers, and whether it is numeric or categorical."""

    label: str
    kind: str = "numeric"  # numeric | categorical


FEATURES: dict[str, FeatureDef] = {
    # Usage level and change.
    "logins_per_seat_30d": FeatureDef("Logins per seat, last 30 days"),
    "logins_change_30d": FeatureDef("Login change vs the previous 30 days"),
    "logins_change_60d": FeatureDef("Login change vs 60-90 days ago"),
    "active_days_30d": FeatureDef("Days with a login, last 30 days"),
    "active_days_change_30d": FeatureDef("Change in days with a login vs the previous 30 days"),
    "days_since_login": FeatureDef("Days since the last login"),
    "minutes_per_login_30d": FeatureDef("Minutes per session, last 30 days"),
    "minutes_change_30d": FeatureDef("Session minutes change vs the previous 30 days"),
    "uses_per_seat_30d": FeatureDef("Feature uses per seat, last 30 days"),
    "usage_change_30d": FeatureDef("Feature use change vs the previous 30 days"),
    "usage_change_60d": FeatureDef("Feature use change vs 60-90 days ago"),
    "usage_per_seat_90d": FeatureDef("Feature uses per seat, last 90 days"),
    "api_calls_per_seat_30d": FeatureDef("API calls per seat, last 30 days"),
    "api_change_30d": FeatureDef("API call change vs the previous 30 days"),
    "api_limit_use": FeatureDef("API calls in 30 days / plan limit"),
    # Adoption.
    "core_adoption": FeatureDef("Share of core features used, last 30 days"),
    "feature_breadth": FeatureDef("Share of all features used, last 30 days"),
    "advanced_adoption": FeatureDef("Share of advanced features used, last 30 days"),
    "core_features_abandoned": FeatureDef("Core features used before but not in the last 30 days"),
    "ttfv_days": FeatureDef("Days to first value"),
    "no_first_value": FeatureDef("First value not reached yet"),
    # Support.
    "tickets_per_seat_30d": FeatureDef("Tickets per seat, last 30 days"),
    "ticket_spike": FeatureDef("Tickets, last 30 days vs the previous 60 (change)"),
    "escalations_90d": FeatureDef("Escalations, last 90 days"),
    "avg_resolution_hours": FeatureDef("Average ticket resolution hours, last 90 days"),
    "self_service_share": FeatureDef("Self-service share of support, last 90 days"),
    # Voice of the customer and relationship.
    "survey_avg_90d": FeatureDef("Average survey score, last 90 days"),
    "survey_responses_90d": FeatureDef("Survey responses, last 90 days"),
    "churn_signals_30d": FeatureDef("Cancellation inquiries, exports, competitor mentions, last 30 days"),
    "churn_signals_90d": FeatureDef("Cancellation inquiries, exports, competitor mentions, last 90 days"),
    "responsiveness": FeatureDef("Customer replies per CSM message, last 90 days"),
    "replies_change_30d": FeatureDef("Customer replies change vs the previous 30 days"),
    # Commercial.
    "tenure_days": FeatureDef("Days as a customer"),
    "log_arr": FeatureDef("ARR (log)"),
    "log_seats": FeatureDef("Seats purchased (log)"),
    "seat_growth_90d": FeatureDef("Seat change, last 90 days (relative)"),
    "plan_change_90d": FeatureDef("Net plan moves, last 90 days"),
    "days_to_renewal": FeatureDef("Days to the next contract anniversary"),
    "segment": FeatureDef("Segment", "categorical"),
    # Health factors (computed from point-in-time metrics only).
    "health": FeatureDef("Health score"),
    "f_adoption": FeatureDef("Health factor: adoption"),
    "f_engagement": FeatureDef("Health factor: engagement"),
    "f_support": FeatureDef("Health factor: support"),
    "f_relationship": FeatureDef("Health factor: relationship"),
    "f_expansion": FeatureDef("Health factor: expansion"),
}


def numeric_features() -> list[str]:
    """Names of the numeric model features, in FEATURES order."""
    return [name for name, spec in FEATURES.items() if spec.kind == "numeric"]


def categorical_features() -> list[str]:
    """Names of the categorical model features (one-hot encoded by the models)."""
    return [name for name, spec in FEATURES.items() if spec.kind == "categorical"]


def relative_change(current: pd.Series | np.ndarray, before: pd.Series | np.ndarray, cap: float = 3.0) -> np.ndarray:
    """(current - before) / before, with +1 smoothing on the denominator and capped to [-1, cap].

    Smoothing keeps a jump from 0 to 1 login from reading as infinite growth; the cap keeps one bursty account
    from dominating a linear model. NaN stays NaN (no usage feed).
    """
    cur = np.asarray(current, dtype="float64")
    prev = np.asarray(before, dtype="float64")
    return np.clip((cur - prev) / (np.maximum(prev, 0.0) + 1.0), -1.0, cap)


def days_to_renewal(customer_since: pd.Series, as_of: date) -> np.ndarray:
    """Days from `as_of` to the next yearly anniversary of the contract start (0 on the anniversary itself).

    Why not the CRM's renewal date: it is the *latest* one, and for a churned account it is the churn date, so
    reading it at a past date reveals the outcome (and inferring the term from it leaks the same way). The start
    date never changes, and annual contracts renew on its anniversaries; for monthly contracts the feature is
    simply uninformative, which the model learns.
    """
    since = pd.to_datetime(customer_since)
    elapsed = (pd.Timestamp(as_of) - since).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    year = 365.25
    years = np.ceil(np.maximum(elapsed, 0.0) / year)
    return np.round(years * year - elapsed, 0)


def point_in_time_metrics(metrics: pd.DataFrame, activity: pd.DataFrame) -> pd.DataFrame:
    """The metrics with the today-only CRM fields masked, so health factors at a past date use no future data.

    Tickets per seat is rebuilt from the 30-day ticket window and the seats purchased as of the date (the store's
    version divides by today's active seats).
    """
    out = metrics.copy()
    for column in SNAPSHOT_METRICS:
        if column in out.columns:
            out[column] = np.nan
    tickets = activity.reindex(out.index)[window_column("tickets_opened", 0)]
    seats = _seats(out)
    out["tickets_per_seat_30d"] = (tickets.to_numpy(dtype="float64") / seats).astype("float64")
    return out


def _seats(metrics: pd.DataFrame) -> np.ndarray:
    seats = metrics["seats_at_as_of"] if "seats_at_as_of" in metrics else metrics["seats_purchased"]
    return np.maximum(seats.to_numpy(dtype="float64", na_value=np.nan), 1.0)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype="float64", na_value=np.nan)


def build_features(
    metrics: pd.DataFrame,
    activity: pd.DataFrame,
    health: pd.DataFrame | None,
    as_of: date,
    core_features: Sequence[str],
) -> pd.DataFrame:
    """The feature matrix (columns = FEATURES, index = the metrics' account ids) as of `as_of`.

    Accounts with no usage feed yet (the metrics' usage columns are NaN) get NaN usage features rather than
    zeros, so "not instrumented" is not mistaken for "stopped using the product".
    """
    index = metrics.index
    instrumented = metrics["active_days_per_week"].notna().to_numpy()
    act = activity.reindex(index)
    window_names = [window_column(m, w) for m in WINDOW_METRICS for w in range(N_WINDOWS)]
    sums = act.reindex(columns=window_names).astype("float64").fillna(0.0)
    sums[~instrumented] = np.nan

    def w(metric: str, window: int) -> np.ndarray:
        return sums[window_column(metric, window)].to_numpy()

    seats = _seats(metrics)
    out: dict[str, np.ndarray] = {}
    out["logins_per_seat_30d"] = w("logins", 0) / seats
    out["logins_change_30d"] = relative_change(w("logins", 0), w("logins", 1))
    out["logins_change_60d"] = relative_change(w("logins", 0), w("logins", 2))
    out["active_days_30d"] = w("active_days", 0)
    out["active_days_change_30d"] = relative_change(w("active_days", 0), w("active_days", 1))
    last_login = pd.to_datetime(act[LAST_LOGIN_COLUMN]) if LAST_LOGIN_COLUMN in act else pd.Series(pd.NaT, index)
    since_login = (pd.Timestamp(as_of) - last_login).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    out["days_since_login"] = np.where(instrumented, np.fmin(since_login, MAX_DAYS_SINCE_LOGIN), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["minutes_per_login_30d"] = np.where(w("logins", 0) > 0, w("session_minutes", 0) / w("logins", 0), 0.0)
    out["minutes_per_login_30d"][~instrumented] = np.nan
    out["minutes_change_30d"] = relative_change(w("session_minutes", 0), w("session_minutes", 1))
    out["uses_per_seat_30d"] = w("feature_uses", 0) / seats
    out["usage_change_30d"] = relative_change(w("feature_uses", 0), w("feature_uses", 1))
    out["usage_change_60d"] = relative_change(w("feature_uses", 0), w("feature_uses", 2))
    out["usage_per_seat_90d"] = (w("feature_uses", 0) + w("feature_uses", 1) + w("feature_uses", 2)) / seats
    out["api_calls_per_seat_30d"] = w("api_calls", 0) / seats
    out["api_change_30d"] = relative_change(w("api_calls", 0), w("api_calls", 1))
    api_limit = _column(metrics, "api_limit")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["api_limit_use"] = np.where(api_limit > 0, w("api_calls", 0) / api_limit, np.nan)

    out["core_adoption"] = _column(metrics, "core_adoption")
    out["feature_breadth"] = _column(metrics, "feature_breadth")
    out["advanced_adoption"] = _column(metrics, "advanced_adoption")
    recent = act.reindex(columns=[CORE_RECENT_PREFIX + k for k in core_features]).fillna(0).to_numpy(dtype=bool)
    prior = act.reindex(columns=[CORE_PRIOR_PREFIX + k for k in core_features]).fillna(0).to_numpy(dtype=bool)
    abandoned = (prior & ~recent).sum(axis=1).astype("float64")
    out["core_features_abandoned"] = np.where(instrumented, abandoned, np.nan)
    ttfv = _column(metrics, "ttfv_days")
    out["ttfv_days"] = ttfv
    out["no_first_value"] = np.isnan(ttfv).astype("float64")

    out["tickets_per_seat_30d"] = w("tickets_opened", 0) / seats
    prior_tickets = (w("tickets_opened", 1) + w("tickets_opened", 2)) / 2.0
    out["ticket_spike"] = relative_change(w("tickets_opened", 0), prior_tickets)
    out["escalations_90d"] = w("escalations", 0) + w("escalations", 1) + w("escalations", 2)
    out["avg_resolution_hours"] = _column(metrics, "avg_resolution_hours")
    out["self_service_share"] = _column(metrics, "self_service_share")

    survey_n = w("survey_count", 0) + w("survey_count", 1) + w("survey_count", 2)
    survey_sum = w("survey_sum", 0) + w("survey_sum", 1) + w("survey_sum", 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["survey_avg_90d"] = np.where(survey_n > 0, survey_sum / survey_n, np.nan)
    out["survey_responses_90d"] = survey_n
    out["churn_signals_30d"] = w("churn_signals", 0)
    out["churn_signals_90d"] = w("churn_signals", 0) + w("churn_signals", 1) + w("churn_signals", 2)
    out["responsiveness"] = _column(metrics, "responsiveness")
    out["replies_change_30d"] = relative_change(w("replies", 0), w("replies", 1))

    out["tenure_days"] = _column(metrics, "tenure_days")
    out["log_arr"] = np.log1p(np.fmax(_column(metrics, "arr"), 0.0))
    out["log_seats"] = np.log1p(seats)
    out["seat_growth_90d"] = _column(metrics, "seat_growth_90d")
    out["plan_change_90d"] = _column(metrics, "plan_change_90d")
    if "customer_since" in metrics:
        out["days_to_renewal"] = days_to_renewal(metrics["customer_since"], as_of)
    else:
        out["days_to_renewal"] = np.full(len(index), np.nan)
    frame = pd.DataFrame(out, index=index)
    segment = metrics["segment"] if "segment" in metrics else pd.Series(None, index=index, dtype=object)
    frame["segment"] = segment.astype(object).where(segment.notna(), None)
    for column in ("health", "f_adoption", "f_engagement", "f_support", "f_relationship", "f_expansion"):
        frame[column] = np.nan if health is None or column not in health else health[column].astype("float64")
    return frame[list(FEATURES)].replace([np.inf, -np.inf], np.nan)
