"""Per-event-type usage features of an imported product log, as of one observation date (pure pandas).

`events` has one row per account, day, event type and count (the store's imported activity rows). Only days on or
before `as_of` are read. Per type: counts over the last 30, 60 and 90 days, their change against the window
before (30/60/90 days earlier), a per-active-user rate, and a tenure-scaled 30-day rate so a 10-day-old account
is not read as a quiet one.

Per type also, over the account's whole life in the log: the total (log-scaled) and the monthly rate (the total
over the days the account was observable, i.e. its tenure or the log's length, whichever is shorter). A month is
a noisy sample of a habit (day-of-week swings, Poisson noise on rare actions); the life-long rate is the steadier
estimate of how much the account uses the product, and the total is what a customer's sense of value
accumulates from. The 30-day count is also given log-scaled: usage counts are heavy-tailed and their effect on
retention flattens out, which a linear model reads better on a log scale.

Per type finally, how much of the behaviour the account will have accumulated by its next renewal, the moment a
subscriber decides whether to stay: its life-long total plus its recent daily rate over the days left to the
renewal (at most a month ahead), in units of the book's typical month of that behaviour (the mean monthly rate of
the accounts observed on the same date, so from data up to `as_of` only). A count means little on its own: 40
posts a month is heavy use of a product whose customers post 10, light use of one whose customers post 200; in
typical months every type is on one scale (given log-scaled). The value of a behaviour saturates (the tenth
month of messages adds less than the first), at a level no one knows in advance, so the amount is also given
capped at a few knots, min(x, k) / k, with k the book's own percentiles of x on that date (KNOT_PERCENTILES): each
is "enough of this so far" by the book's standard, and a linear model weighs them per type into whatever concave,
saturating shape the data shows (a piecewise-linear spline whose knots come from the data, not from a constant).
When a percentile is zero (most accounts never did it) its cap reads "did it at all".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.learning.features import relative_change

WINDOWS = (30, 60, 90)
KNOT_PERCENTILES = (10, 25, 50)  # where the usage at renewal is capped (module doc), in the book's percentiles
USERS_FEATURE = "active_users"  # rows counting distinct users per day (app/history/load.py)


def _sums(events: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    """Per account x type: summed counts of the days with age in [lo, hi)."""
    part = events[(events["age"] >= lo) & (events["age"] < hi)]
    return part.pivot_table(index="account_id", columns="feature", values="count", aggfunc="sum", fill_value=0)


def event_type_features(
    events: pd.DataFrame,
    as_of: pd.Timestamp,
    index: pd.Index,
    tenure_days: pd.Series,
    days_to_renewal: pd.Series | None = None,
) -> pd.DataFrame:
    """The features above for the accounts in `index` (missing accounts: zero use). `days_to_renewal`: days from
    `as_of` to each account's next renewal (unknown or none: the total as of `as_of` is used)."""
    age = (pd.Timestamp(as_of) - pd.to_datetime(events["day"])).dt.days
    past = events.assign(age=age)[age >= 0]
    events = past[past["age"] < 2 * max(WINDOWS)]
    types = sorted(set(events["feature"]) - {USERS_FEATURE})
    out: dict[str, pd.Series] = {}
    user_days = None
    for w in WINDOWS:
        now = _sums(events, 0, w).reindex(index=index, columns=[*types, USERS_FEATURE], fill_value=0).fillna(0)
        before = _sums(events, w, 2 * w).reindex(index=index, columns=types, fill_value=0).fillna(0)
        if w == WINDOWS[0]:
            user_days = now[USERS_FEATURE].astype("float64")
        out[f"active_user_days_{w}d"] = now[USERS_FEATURE].astype("float64")
        for t in types:
            out[f"ev_{t}_{w}d"] = now[t].astype("float64")
            out[f"ev_{t}_change_{w}d"] = pd.Series(relative_change(now[t], before[t]), index=index)
    assert user_days is not None
    window = float(WINDOWS[0])
    observed = tenure_days.reindex(index).clip(lower=1, upper=window).fillna(window)
    life = _sums(past, 0, int(past["age"].max()) + 1 if len(past) else 1)
    life = life.reindex(index=index, columns=types, fill_value=0).fillna(0)
    log_days = float(past["age"].max()) + 1 if len(past) else 1.0
    lived = tenure_days.reindex(index).clip(lower=1, upper=log_days).fillna(log_days)
    ahead = pd.Series(0.0, index=index) if days_to_renewal is None else days_to_renewal.reindex(index)
    ahead = ahead.clip(lower=0, upper=window).fillna(0.0)
    for t in types:
        out[f"ev_{t}_per_user_day_30d"] = out[f"ev_{t}_30d"] / user_days.where(user_days > 0)
        out[f"ev_{t}_tenure_scaled_30d"] = out[f"ev_{t}_30d"] * window / observed
        out[f"ev_{t}_log_30d"] = np.log1p(out[f"ev_{t}_30d"])
        out[f"ev_{t}_log_life"] = np.log1p(life[t].astype("float64"))
        out[f"ev_{t}_per_month_life"] = life[t].astype("float64") * window / lived
        typical = out[f"ev_{t}_per_month_life"].mean()
        at_renewal = life[t].astype("float64") + out[f"ev_{t}_30d"] / observed * ahead
        months = at_renewal / typical if typical > 0 else at_renewal * 0.0
        out[f"ev_{t}_typical_months_at_renewal"] = np.log1p(months)
        for percentile in KNOT_PERCENTILES:
            knot = months.quantile(percentile / 100)
            capped = np.minimum(months / knot, 1.0) if knot > 0 else (months > 0).astype("float64")
            out[f"ev_{t}_at_renewal_capped_p{percentile}"] = capped
    return pd.DataFrame(out, index=index)
