"""Onboarding milestones in the store: the day each was first met, recorded after each scoring; the funnel,
completion rate, time to first value and on track / behind / stuck counts read back for reports and the demo."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select

from app.store.bulk import result_frame, staged_insert
from app.store.models import Account, AccountDay, ProgramMilestone
from engine.programs.milestone_list import TRACKED_DAYS
from engine.programs.milestones import MILESTONES, ONBOARDING_DAYS, milestones_met, onboarding_status
from engine.programs.plan import condition_frame

__all__ = ["TRACKED_DAYS", "onboarding_summary", "record_milestones"]


def record_milestones(conn: Connection, scored: pd.DataFrame, as_of: date) -> int:
    """Store the milestones new accounts meet as of `as_of` (a milestone already recorded keeps its first day).

    Runs after `enroll`, in its transaction and so under the programs lock (tick.take_lock), as every write of
    milestones does: the ones the accounts have recorded are read first and only the others inserted, by a plain
    COPY on PostgreSQL (a conflict check per row cost a million-account first run's 658,000 milestones ~2 s more;
    the primary key still fails a double one)."""
    frame = condition_frame(scored)
    frame = frame[frame["tenure_days"] <= TRACKED_DAYS]
    if frame.empty:
        return 0
    long = milestones_met(frame).stack()
    long = long[long.to_numpy(dtype=bool)].reset_index()
    long.columns = ["account_id", "milestone", "met"]
    long = long[~pd.MultiIndex.from_frame(long[["account_id", "milestone"]]).isin(_recorded(conn, frame.index))]
    long["met_on"] = as_of
    return staged_insert(conn, ProgramMilestone.__table__, long, ["account_id", "milestone", "met_on"])


def _recorded(conn: Connection, account_ids: pd.Index) -> pd.MultiIndex:
    """The (account, milestone) pairs recorded for these accounts: one range scan of the primary key over their
    span (a chunk's accounts fill it), then kept to the accounts themselves."""
    m = ProgramMilestone
    span = m.account_id.between(int(account_ids.min()), int(account_ids.max()))
    recorded = result_frame(conn.execute(select(m.account_id, m.milestone).where(span)))
    return pd.MultiIndex.from_frame(recorded[recorded["account_id"].isin(account_ids)])


def onboarding_summary(conn: Connection, as_of: date) -> dict:
    """Onboarding figures as of `as_of`: accounts in their first 90 days by status, completion rate of the accounts
    past day 90 (graduated share), median days to first value, and the funnel of milestones met."""
    accounts = pd.DataFrame(
        conn.execute(select(Account.id, Account.customer_since, Account.first_value_at).where(
            Account.status == "active", Account.customer_since >= as_of - timedelta(days=TRACKED_DAYS)
        )).all(), columns=["id", "customer_since", "first_value_at"],
    ).set_index("id")  # fmt: skip
    rows = conn.execute(select(ProgramMilestone.account_id, ProgramMilestone.milestone).where(
        ProgramMilestone.met_on <= as_of)).all()  # fmt: skip
    met = pd.crosstab(pd.Series([a for a, _ in rows], name="account_id"), pd.Series([m for _, m in rows])) > 0
    met = met.reindex(index=accounts.index, columns=[m[0] for m in MILESTONES], fill_value=False)
    tenure = (pd.Timestamp(as_of) - pd.to_datetime(accounts["customer_since"])).dt.days
    new = tenure <= ONBOARDING_DAYS
    last_login = pd.Series(dict(conn.execute(
        select(AccountDay.account_id, func.max(AccountDay.day)).where(AccountDay.logins > 0, AccountDay.day <= as_of)
        .group_by(AccountDay.account_id)
    ).all()), dtype=object)  # fmt: skip
    idle = (pd.Timestamp(as_of) - pd.to_datetime(last_login.reindex(accounts.index))).dt.days.fillna(TRACKED_DAYS)
    status = onboarding_status(met[new], tenure[new], idle[new])
    past = ~new
    ttfv = (pd.to_datetime(accounts["first_value_at"]) - pd.to_datetime(accounts["customer_since"])).dt.days
    return {
        "accounts": int(new.sum()),
        "status": {s: int((status == s).sum()) for s in ("on_track", "behind", "stuck")},
        "completion_rate": round(float(met.loc[past, "graduated"].mean()), 3) if past.any() else None,
        "median_days_to_first_value": float(np.nanmedian(ttfv)) if ttfv.notna().any() else None,
        "funnel": {m[0]: int(met[m[0]].sum()) for m in MILESTONES},
    }
