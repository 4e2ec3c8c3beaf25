"""Account metrics as of a date, aggregated in the database from the daily rollups (one row per account out).

Aggregating in SQL keeps the transfer at one row per account, which is what lets a 100,000-account book score in
seconds; the engine then works on the resulting DataFrame only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from app.store.active import accounts_active_on  # noqa: F401  (re-exported for the scoring paths)
from app.store.bulk import fetch_int_columns, result_frame
from app.store.models import Account, AccountDay, Contact, Feature
from app.store.scope import AccountScope, IdRange, range_filter, scope_filter

USAGE_WINDOW_DAYS = 28
TICKET_WINDOW_DAYS = 30
TREND_WINDOW_DAYS = 90
FEATURES_MASK = "features_mask_30"  # PostgreSQL: the ticket window's feature masks OR-ed, read with the aggregates

# Account attributes the expansion scorer and reports read next to the metrics.
ACCOUNT_ATTRIBUTES = (
    "key", "name", "segment", "plan", "arr", "owner", "seats_purchased", "seats_active", "api_limit", "api_used",
    "storage_limit_gb", "storage_used_gb", "renewal_date", "customer_since",
)  # fmt: skip


def _since(start: date, column):
    """Sum of `column` over the days from `start`; the query itself already stops at the scoring date."""
    return func.sum(case((AccountDay.day >= start, column), else_=0))


def _frame(result, dates: Sequence[str] = (), whole: Sequence[str] = ()) -> pd.DataFrame:
    """The rows by account, every column a float but the `dates` (datetimes) and the `whole` (bit masks, exact)."""
    frame = result_frame(result).set_index("account_id")
    whole = [c for c in whole if c in frame.columns]
    numbers = [c for c in frame.columns if c not in dates and c not in whole]
    frame[whole] = frame[whole].astype("Int64")  # nullable: an outer join must not make them floats
    frame[numbers] = frame[numbers].astype("float64")
    for column in dates:
        frame[column] = pd.to_datetime(frame[column])
    return frame


def _rollups_of(accounts, scope: AccountScope) -> ColumnElement[bool]:
    """The daily rollups to aggregate for the active `accounts` of `scope`. For a range (a chunk, a shard) that is
    the range alone, read by one range scan of the rollups' primary key: the rows of an inactive account in it
    are aggregated too, and dropped when the aggregates join the active accounts (account_metrics). Filtering
    by the accounts as well made PostgreSQL probe the rollups once per account, 2-3x the CPU of the scan."""
    if isinstance(scope, IdRange):
        return scope_filter(AccountDay.account_id, scope)
    return AccountDay.account_id.in_(accounts)


def _features_used(
    conn: Connection,
    as_of: date,
    features: Sequence[str],
    accounts,
    scope: AccountScope = None,
    activity: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per account, 1.0 for each feature used in the ticket window, from the daily bit masks.

    PostgreSQL ORs the masks itself (bit_or) in the aggregates' query (`activity`'s FEATURES_MASK column, taken
    out of it here): one row per account travels, and the window's rows are read once, not twice. SQLite has no
    bitwise-OR aggregate, and testing each bit in SQL costs a CASE per feature per row, so there the masks are read
    and OR-reduced in NumPy.
    """
    masks = dict(conn.execute(select(Feature.key, Feature.mask)).all())
    keys = [k for k in features if k in masks]
    if activity is not None and FEATURES_MASK in activity:
        ids, combined = activity.index.to_numpy(), activity.pop(FEATURES_MASK).fillna(0).to_numpy(dtype=np.int64)
    else:
        d = AccountDay
        start = as_of - timedelta(days=TICKET_WINDOW_DAYS - 1)
        in_window = (d.day.between(start, as_of), d.features_mask != 0, _rollups_of(accounts, scope))
        account_ids, day_masks = fetch_int_columns(conn, select(d.account_id, d.features_mask).where(*in_window)
                                                   .order_by(d.account_id))  # fmt: skip
        ids, starts = np.unique(account_ids, return_index=True)
        combined = np.bitwise_or.reduceat(day_masks, starts) if len(ids) else day_masks
    if not len(ids):
        return pd.DataFrame(columns=keys, dtype="float64")
    bits = np.array([masks[k] for k in keys], dtype=np.int64)
    used = ((combined[:, None] & bits[None, :]) != 0).astype("float64")
    return pd.DataFrame(used, index=pd.Index(ids, name="account_id"), columns=keys)


def _activity_aggregates(conn: Connection, as_of: date, accounts, scope: AccountScope = None) -> pd.DataFrame:
    d28 = as_of - timedelta(days=USAGE_WINDOW_DAYS - 1)
    d30 = as_of - timedelta(days=TICKET_WINDOW_DAYS - 1)
    d90 = as_of - timedelta(days=TREND_WINDOW_DAYS - 1)
    d = AccountDay
    windowed = (
        select(
            d.account_id,
            _since(d28, case((d.logins > 0, 1), else_=0)).label("active_days_28"),
            _since(d28, d.logins).label("logins_28"),
            _since(d28, d.session_minutes).label("minutes_28"),
            func.sum(
                case((d.day < d28 - timedelta(days=USAGE_WINDOW_DAYS), 0), (d.day < d28, d.logins), else_=0)
            ).label("logins_prev_28"),
            func.max(case((d.logins > 0, d.day))).label("last_login"),
            func.max(case((d.feature_uses > 0, d.day))).label("last_feature_use"),
            _since(d30, d.churn_signals).label("churn_signals_30"),
            func.sum(d.survey_sum).label("survey_sum_90"),
            func.sum(d.survey_count).label("survey_count_90"),
            _since(d30, d.tickets_opened).label("tickets_30"),
            func.sum(d.tickets_opened).label("tickets_90"),
            func.sum(d.tickets_closed).label("closed_90"),
            func.sum(d.resolution_hours).label("resolution_hours_90"),
            func.sum(d.escalations).label("escalations_90"),
            func.sum(d.self_service).label("self_service_90"),
            func.sum(d.outreach).label("outreach_90"),
            func.sum(d.replies).label("replies_90"),
            func.sum(d.seat_delta).label("seat_delta_90"),
            func.sum(d.plan_delta).label("plan_delta_90"),
        )
        .where(d.day.between(d90, as_of), _rollups_of(accounts, scope))
        .group_by(d.account_id)
    )
    if conn.dialect.name == "postgresql":  # the ticket window's features used, for _features_used
        windowed = windowed.add_columns(func.coalesce(func.bit_or(case((d.day >= d30, d.features_mask))), 0)
                                        .label(FEATURES_MASK))  # fmt: skip
    # Seat changes after the scoring date, to roll today's seat count back to it.
    later_seats = (
        select(d.account_id, func.sum(d.seat_delta).label("seat_delta_after"))
        .where(d.day > as_of, d.seat_delta != 0, _rollups_of(accounts, scope))
        .group_by(d.account_id)
    )
    activity = _frame(conn.execute(windowed), dates=("last_login", "last_feature_use"), whole=(FEATURES_MASK,))
    return activity.join(_frame(conn.execute(later_seats)), how="outer")


def _account_frame(conn: Connection, account_filter) -> pd.DataFrame:
    columns = [getattr(Account, name) for name in ACCOUNT_ATTRIBUTES]
    query = select(Account.id, *columns, Account.first_value_at, Account.first_activity_at, Account.roi_pct,
                   Account.goal_attainment).where(account_filter)  # fmt: skip
    return result_frame(conn.execute(query)).set_index("id")


def _champions(conn: Connection, account_filter, scope: AccountScope = None) -> pd.Series:
    query = (
        select(Contact.account_id, func.max(case((Contact.is_champion, 1), else_=0)))
        .where(Contact.account_id.in_(select(Account.id).where(account_filter)))
        .where(range_filter(Contact.account_id, scope))
        .group_by(Contact.account_id)
    )
    rows = conn.execute(query).all()
    return pd.Series(dict(rows), dtype="float64", name="has_champion")


def _days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days.astype("float64")


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    denominator = denominator.astype("float64")
    return numerator.astype("float64") / denominator.where(denominator > 0)


def account_metrics(
    conn: Connection,
    as_of: date,
    core_features: Sequence[str],
    features: Sequence[str],
    account_ids: AccountScope = None,
) -> pd.DataFrame:
    """Metrics of engine.canonical.METRIC_COLUMNS plus account attributes, indexed by account id.

    Only data on or before `as_of` is read, except the seat changes after it, which are needed to roll today's
    seat count back to `as_of`.
    """
    account_filter = accounts_active_on(as_of)
    if account_ids is not None:
        account_filter = and_(account_filter, scope_filter(Account.id, account_ids))
    accounts = _account_frame(conn, account_filter)
    if accounts.empty:
        return accounts
    in_scope = select(Account.id).where(account_filter)
    activity = _activity_aggregates(conn, as_of, in_scope, account_ids)
    used = _features_used(conn, as_of, features, in_scope, account_ids, activity)
    activity["core_used"] = used.reindex(columns=list(core_features), fill_value=0.0).sum(axis=1)
    activity["features_used"] = used.sum(axis=1)
    frame = accounts.join(activity, how="left").join(_champions(conn, account_filter, account_ids), how="left")

    as_of_ts = pd.Timestamp(as_of)
    instrumented = pd.to_datetime(frame["first_activity_at"]) <= as_of_ts
    first_value = pd.to_datetime(frame["first_value_at"])
    activity_or_zero = frame[activity.columns.drop(["last_login", "last_feature_use"])].fillna(0.0)

    def usage(column: str) -> pd.Series:
        """A usage count where the account is instrumented (0 means no use); NaN where we have no usage feed."""
        return activity_or_zero[column].where(instrumented)

    seats_now = frame["seats_purchased"].astype("float64")
    # Seat and plan changes come from the CRM, so they count whether or not a usage feed exists.
    seat_delta_90 = activity_or_zero["seat_delta_90"]
    seats_at = seats_now - activity_or_zero["seat_delta_after"]
    seats_90_ago = seats_at - seat_delta_90
    metrics = pd.DataFrame(index=frame.index)
    metrics["core_adoption"] = usage("core_used") / max(len(core_features), 1)
    metrics["feature_breadth"] = usage("features_used") / max(len(features), 1)
    metrics["ttfv_days"] = _days_between(first_value, frame["customer_since"]).where(first_value <= as_of_ts)
    metrics["tenure_days"] = _days_between(as_of_ts, frame["customer_since"])
    metrics["active_days_per_week"] = usage("active_days_28") / (USAGE_WINDOW_DAYS / 7)
    metrics["avg_session_minutes"] = _ratio(usage("minutes_28"), usage("logins_28"))
    metrics["active_user_share"] = _ratio(frame["seats_active"], seats_at).clip(upper=1.0)
    metrics["tickets_per_seat_30d"] = _ratio(usage("tickets_30"), frame["seats_active"].clip(lower=1))
    metrics["avg_resolution_hours"] = _ratio(usage("resolution_hours_90"), usage("closed_90"))
    metrics["escalations_90d"] = usage("escalations_90")
    metrics["self_service_share"] = _ratio(usage("self_service_90"), usage("self_service_90") + usage("tickets_90"))
    metrics["roi_pct"] = frame["roi_pct"].astype("float64")
    metrics["goal_attainment"] = frame["goal_attainment"].astype("float64")
    metrics["has_champion"] = frame["has_champion"]
    metrics["responsiveness"] = _ratio(usage("replies_90"), usage("outreach_90")).clip(upper=1.0)
    metrics["seat_growth_90d"] = _ratio(seat_delta_90, seats_90_ago)
    metrics["plan_change_90d"] = activity_or_zero["plan_delta_90"]
    metrics["seats_at_as_of"] = seats_at
    metrics["advanced_adoption"] = _ratio(
        usage("features_used") - usage("core_used"), pd.Series(float(len(features) - len(core_features)), frame.index)
    )
    # Signals the programs and the churn model read besides the health metrics (engine.canonical.SIGNAL_COLUMNS).
    quiet_for = TREND_WINDOW_DAYS + 1  # no use inside the window: at least this many days
    metrics["days_since_login"] = _days_between(as_of_ts, frame["last_login"]).fillna(quiet_for).where(instrumented)
    metrics["days_since_feature_use"] = (
        _days_between(as_of_ts, frame["last_feature_use"]).fillna(quiet_for).where(instrumented)
    )
    metrics["usage_change_28d"] = _ratio(usage("logins_28"), usage("logins_prev_28")) - 1.0
    metrics["churn_signals_30d"] = activity_or_zero["churn_signals_30"]
    metrics["nps_90d"] = _ratio(activity_or_zero["survey_sum_90"], activity_or_zero["survey_count_90"])
    attributes = frame[list(ACCOUNT_ATTRIBUTES)]
    return metrics.join(attributes).replace([np.inf, -np.inf], np.nan)
