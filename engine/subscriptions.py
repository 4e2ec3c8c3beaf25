"""What subscription terms say about an account, computed from the terms alone (pure pandas, no I/O).

A term is one billed period of a base plan or an add-on: account_id, term_key, plan, is_addon, mrr, seats,
billing_period, discount, start_date, end_date (NaT: open-ended). Everything here is derived, never typed in:

* churn: the last base-plan term ended with no successor (a base term starting within the grace days after);
* upsell / downsell: a change of the account's total MRR (base plus add-ons) while it stays a customer, and a
  change of the base plan's seats;
* plan state as of a date D: read only from terms that started on or before D, so a term starting after D
  changes nothing at D.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TERM_COLUMNS = ("account_id", "term_key", "plan", "is_addon", "mrr", "seats", "billing_period", "discount",
                "start_date", "end_date")  # fmt: skip
PLAN_STATE_NUMERIC = ("sub_mrr", "sub_addon_mrr", "sub_seats", "sub_discount", "sub_days_to_term_end",
                      "sub_renewal_due", "sub_tenure_days", "sub_mrr_change_90d", "sub_addons")  # fmt: skip
PLAN_STATE_CATEGORICAL = ("sub_plan", "sub_billing_period")


def _dates(terms: pd.DataFrame) -> pd.DataFrame:
    return terms.assign(start_date=pd.to_datetime(terms["start_date"]), end_date=pd.to_datetime(terms["end_date"]))


def churn_dates(terms: pd.DataFrame, data_end: pd.Timestamp, grace_days: int = 0) -> pd.DataFrame:
    """Per account: customer_since (first base term's start) and churned_at (end of the last base term, when it
    ended more than `grace_days` before `data_end` — no successor can still come — else NaT)."""
    base = _dates(terms[~terms["is_addon"].astype(bool)])
    grouped = base.groupby("account_id")
    open_ended = base["end_date"].isna().groupby(base["account_id"]).any()
    last_end = grouped["end_date"].max()
    ended = ~open_ended & (last_end + pd.Timedelta(days=grace_days) < pd.Timestamp(data_end))
    return pd.DataFrame({"customer_since": grouped["start_date"].min(), "churned_at": last_end.where(ended)})


def _levels(terms: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per account and day where it moves: the summed `column` of the active terms after that day (`level`), the
    move (`delta`) and the level before it."""
    rows = _dates(terms)[["account_id", "start_date", "end_date", column]].dropna(subset=[column])
    starts = rows.rename(columns={"start_date": "day"}).assign(delta=rows[column])[["account_id", "day", "delta"]]
    ends = rows.dropna(subset=["end_date"]).rename(columns={"end_date": "day"})
    ends = ends.assign(delta=-ends[column])[["account_id", "day", "delta"]]
    steps = pd.concat([starts, ends], ignore_index=True).groupby(["account_id", "day"], as_index=False)["delta"].sum()
    steps = steps.sort_values(["day", "account_id"], kind="stable").reset_index(drop=True)
    steps["level"] = steps.groupby("account_id")["delta"].cumsum().round(6)
    steps["delta"] = steps["delta"].round(6)
    steps["before"] = (steps["level"] - steps["delta"]).round(6)
    return steps


def _while_customer(terms: pd.DataFrame, column: str) -> pd.DataFrame:
    """(account_id, day, delta) of the moves of `column` made while the account keeps a base plan: neither its
    first start nor the end of its last base term (a churn is no downsell, even with an add-on left running)."""
    steps = _levels(terms, column)
    base = terms[~terms["is_addon"].astype(bool)].assign(_one=1.0)
    in_force = _levels(base, "_one")[["account_id", "day", "level"]].rename(columns={"level": "base_terms"})
    steps = pd.merge_asof(steps, in_force, on="day", by="account_id", direction="backward")
    keep = (steps["before"] > 0) & (steps["level"] > 0) & (steps["delta"] != 0) & (steps["base_terms"] > 0)
    kept = steps.loc[keep, ["account_id", "day", "delta"]]
    return kept.sort_values(["account_id", "day"], kind="stable").reset_index(drop=True)


def mrr_changes(terms: pd.DataFrame) -> pd.DataFrame:
    """(account_id, day, delta): total MRR up (upsell) or down (downsell) while the account stays a customer."""
    return _while_customer(terms, "mrr")


def seat_changes(terms: pd.DataFrame) -> pd.DataFrame:
    """(account_id, day, delta): base-plan seats added or removed while the account stays a customer."""
    return _while_customer(terms[~terms["is_addon"].astype(bool)], "seats")


def _active(terms: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    return (terms["start_date"] <= day) & (terms["end_date"].isna() | (terms["end_date"] > day))


def plan_state(terms: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Per account, its subscription as of `as_of` from terms started by then: the base term in force (the latest
    start; ties to the higher MRR, then the term key, so the pick never depends on row order), total and add-on
    MRR, seats, billing period, discount, days to the term's end, renewal due within the horizon, tenure and MRR
    change over 90 days."""
    as_of = pd.Timestamp(as_of)
    terms = _dates(terms)
    known = terms[terms["start_date"] <= as_of]
    active = known[_active(known, as_of)]
    addon = active["is_addon"].astype(bool)
    base = active[~addon].sort_values(["account_id", "start_date", "mrr", "term_key"], kind="stable")
    current = base.groupby("account_id").tail(1).set_index("account_id")
    days_left = (current["end_date"] - as_of).dt.days.astype("float64")
    mrr_90 = known[_active(known, as_of - pd.Timedelta(days=90))].groupby("account_id")["mrr"].sum()
    mrr_now = active.groupby("account_id")["mrr"].sum()
    index = current.index
    first_start = known[~known["is_addon"].astype(bool)].groupby("account_id")["start_date"].min()
    return pd.DataFrame(
        {
            "sub_plan": current["plan"].astype(object),
            "sub_billing_period": current["billing_period"].astype(object),
            "sub_mrr": mrr_now.reindex(index).astype("float64"),
            "sub_addon_mrr": active[addon].groupby("account_id")["mrr"].sum().reindex(index).fillna(0.0),
            "sub_addons": active[addon].groupby("account_id").size().reindex(index).fillna(0).astype("float64"),
            "sub_seats": current["seats"].astype("float64"),
            "sub_discount": current["discount"].astype("float64"),
            "sub_days_to_term_end": days_left,
            "sub_renewal_due": (days_left <= horizon_days).astype("float64").where(days_left.notna()),
            "sub_tenure_days": (as_of - first_start.reindex(index)).dt.days.astype("float64"),
            "sub_mrr_change_90d": (mrr_now.reindex(index) - mrr_90.reindex(index).fillna(0.0)).astype("float64"),
        },
        index=index,
    ).replace([np.inf, -np.inf], np.nan)
