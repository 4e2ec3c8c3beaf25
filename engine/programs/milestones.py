"""The 15 onboarding milestones (DESIGN §7, days 0-90; listed in engine/programs/milestone_list.py), each a checked
condition over the canonical metrics, and whether new accounts are on track, behind or stuck.

A milestone is met on the first scoring where its condition holds, and stays met (the store keeps the day); an
account is *behind* when a milestone whose day has passed is not met, *stuck* when three or more are, or when it
has not logged in for 14 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.conditions import CONDITION_COLUMNS
from engine.expressions import parse_condition
from engine.programs.milestone_list import (
    MILESTONES,
    ONBOARDING_DAYS,
    STATUSES,
    STUCK_MISSED,
    STUCK_NO_LOGIN_DAYS,
)

__all__ = ["MILESTONES", "ONBOARDING_DAYS", "STATUSES", "milestones_met", "onboarding_status"]


def milestones_met(frame: pd.DataFrame) -> pd.DataFrame:
    """Per account (rows of a condition frame) and milestone (columns): met now."""
    return pd.DataFrame(
        {key: parse_condition(text, CONDITION_COLUMNS).evaluate(frame).to_numpy(dtype=bool)
         for key, _, _, text in MILESTONES},
        index=frame.index,
    )  # fmt: skip


def onboarding_status(met: pd.DataFrame, tenure_days: pd.Series, days_since_login: pd.Series) -> pd.Series:
    """on_track / behind / stuck per account from the milestones ever met and the days since it became a customer."""
    due = np.array([day for _, _, day, _ in MILESTONES])
    overdue = tenure_days.to_numpy(dtype=float)[:, None] >= due[None, :]
    missed = (overdue & ~met.reindex(columns=[m[0] for m in MILESTONES], fill_value=False).to_numpy()).sum(axis=1)
    idle = days_since_login.to_numpy(dtype=float) >= STUCK_NO_LOGIN_DAYS
    status = np.where((missed >= STUCK_MISSED) | idle, "stuck", np.where(missed > 0, "behind", "on_track"))
    return pd.Series(status, index=met.index)
