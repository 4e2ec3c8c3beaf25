"""The monthly observation panel of an imported history: the store's point-in-time snapshots (app/ml/dataset.py)
of the import's accounts, plus plan state from the subscription terms and per-event-type usage, with churn,
upsell and downsell labels derived from the terms.

Everything at an observation date D is read from data on or before D: the store's windows stop at D, the plan
state reads only terms started by D, the event-type windows only days up to D; accounts are in the panel only
while customers (accounts_active_on), so their activity features stop at churn.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import Connection, select

from app.ml.dataset import Panel, build_panel, data_bounds
from app.store.models import SubscriptionTerm, UsageDay
from engine.health_config import HealthConfig
from engine.learning.history_features import USERS_FEATURE, event_type_features
from engine.subscriptions import PLAN_STATE_CATEGORICAL, PLAN_STATE_NUMERIC, TERM_COLUMNS, mrr_changes, plan_state

MONTH_DAYS = 30
FIRST_OBSERVATION_DAYS = 60  # an import's first observation date: two months of log behind it


def load_terms(conn: Connection, name: str) -> pd.DataFrame:
    t = SubscriptionTerm
    rows = conn.execute(select(*[getattr(t, c) for c in TERM_COLUMNS]).where(t.source == name)).all()
    return pd.DataFrame(rows, columns=list(TERM_COLUMNS))


def load_type_counts(conn: Connection, name: str) -> pd.DataFrame:
    """(account_id, day, feature, count) of the import's usage: its per-type counts ("post:3,like:12") and its
    distinct users per day (as the USERS_FEATURE rows engine.learning.history_features reads)."""
    u = UsageDay
    query = select(u.account_id, u.day, u.types, u.active_users).where(u.source == name)
    days = pd.DataFrame(conn.execute(query).all(), columns=["account_id", "day", "types", "active_users"])
    pairs = days[["account_id", "day"]].assign(pair=days["types"].str.split(",")).explode("pair")
    pairs = pairs[pairs["pair"].fillna("") != ""]
    split = pairs["pair"].str.rpartition(":")
    typed = pairs[["account_id", "day"]].assign(feature=split[0], count=split[2].astype("int64"))
    users = days.loc[days["active_users"] > 0, ["account_id", "day"]].assign(
        feature=USERS_FEATURE, count=days["active_users"].astype("int64")
    )
    frame = pd.concat([typed, users], ignore_index=True)
    frame["day"] = pd.to_datetime(frame["day"]).dt.normalize()
    return frame


def _labels(index: pd.Index, as_of: pd.Timestamp, horizon_days: int, changes: pd.DataFrame) -> pd.DataFrame:
    window = changes[(changes["day"] > as_of) & (changes["day"] <= as_of + pd.Timedelta(days=horizon_days))]
    up = window.loc[window["delta"] > 0, "account_id"].unique()
    down = window.loc[window["delta"] < 0, "account_id"].unique()
    return pd.DataFrame({"upsold": index.isin(up).astype("int64"), "downsold": index.isin(down).astype("int64")},
                        index=index)  # fmt: skip


def history_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The import-specific feature columns a history panel adds (numeric, categorical)."""
    numeric = [c for c in frame.columns if c.startswith(("ev_", "active_user_days_"))]
    return [*PLAN_STATE_NUMERIC, *numeric], list(PLAN_STATE_CATEGORICAL)


def history_panel(
    conn: Connection, config: HealthConfig, name: str, horizon_days: int, every_days: int, through_end: bool = False
) -> Panel:
    """Observation dates every `every_days` from two months into the data to its end minus the horizon (to its end
    with `through_end`: scoring, where the last date's labels are not needed; the features still read the horizon,
    e.g. whether a renewal falls within it, as in training)."""
    start, end = data_bounds(conn)
    if start is None or end is None:
        return Panel(pd.DataFrame(), horizon_days, [], None, None)
    first = start + timedelta(days=FIRST_OBSERVATION_DAYS)
    panel = build_panel(conn, config, horizon_days, every_days, first=first, through_end=through_end)
    if panel.frame.empty:
        return panel
    terms, counts = load_terms(conn, name), load_type_counts(conn, name)
    accounts = set(terms["account_id"]) | set(counts["account_id"])
    frame = panel.frame[panel.frame["account_id"].isin(accounts)]
    changes = mrr_changes(terms) if len(terms) else pd.DataFrame(columns=["account_id", "day", "delta"])
    parts = []
    for as_of, rows in frame.groupby("as_of", sort=True):
        index = pd.Index(rows["account_id"].to_numpy(), name="account_id")
        state = plan_state(terms, as_of, horizon_days).reindex(index) if len(terms) else pd.DataFrame(index=index)
        tenure = state.get("sub_tenure_days", rows.set_index("account_id")["tenure_days"])
        usage = event_type_features(counts, as_of, index, tenure, state.get("sub_days_to_term_end"))
        extra = state.join(usage).join(_labels(index, as_of, horizon_days, changes))
        parts.append(rows.set_index("account_id").join(extra).reset_index())
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return Panel(frame, horizon_days, panel.dates, panel.data_start, panel.data_end)
