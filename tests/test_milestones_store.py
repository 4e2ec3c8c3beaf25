"""Onboarding milestones recorded after each scoring: a milestone keeps the day it was first met, one already
recorded is not written again (on PostgreSQL the new ones go in by a plain COPY, with no conflict check), and only
accounts young enough are tracked."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import select

from app.programs.milestones import record_milestones
from app.store.load import load_accounts
from app.store.models import ProgramMilestone
from tests.factories import accounts_frame

DAY = date(2026, 6, 30)


def _scored(ids: dict[str, int], tenure: dict[str, int], seats: dict[str, int]) -> pd.DataFrame:
    """The columns the milestones read (the rest are missing, as for an account with no such data)."""
    keys = list(tenure)
    return pd.DataFrame(
        {"tenure_days": [tenure[k] for k in keys], "seats_active": [seats[k] for k in keys], "band": "healthy",
         "segment": "smb", "expansion_type": None},
        index=pd.Index([ids[k] for k in keys], name="account_id"),
    )  # fmt: skip


def test_a_milestone_keeps_its_first_day_and_is_written_once(store) -> None:
    with store.begin() as conn:
        ids = load_accounts(conn, accounts_frame(3))
    young, mature, team = "A0000", "A0001", "A0002"
    first = _scored(ids, {young: 10, mature: 200, team: 5}, {young: 1, mature: 9, team: 3})
    then = _scored(ids, {young: 11, mature: 201, team: 6}, {young: 2, mature: 9, team: 3})
    with store.begin() as conn:
        written = [record_milestones(conn, first, DAY), record_milestones(conn, then, DAY + timedelta(days=1))]
        rows = conn.execute(select(ProgramMilestone.account_id, ProgramMilestone.milestone, ProgramMilestone.met_on))
        recorded = {(account, milestone): day for account, milestone, day in rows}
    assert written == [4, 1]
    assert recorded == {
        (ids[young], "welcome"): DAY,
        (ids[young], "users_invited"): DAY + timedelta(days=1),
        (ids[team], "welcome"): DAY,
        (ids[team], "users_invited"): DAY,
        (ids[team], "three_active_users"): DAY,
    }
