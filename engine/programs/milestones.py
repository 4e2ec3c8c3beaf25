"""The 15 onboarding milestones (DESIGN §7, days 0-90), each a checked condition over the canonical metrics, and
whether a new account is on track, behind or stuck.

A milestone is met on the first scoring where its condition holds, and stays met (the store keeps the day); an
account is *behind* when a milestone whose day has passed is not met, *stuck* when three or more are, or when it
has not logged in for 14 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.conditions import CONDITION_COLUMNS
from engine.expressions import parse_condition

ONBOARDING_DAYS = 90
# (key, phase, day it is due by, condition)
MILESTONES: tuple[tuple[str, str, int, str], ...] = (
    ("welcome", "setup", 0, "tenure_days >= 0"),
    ("champion_named", "setup", 3, "has_champion == 1"),
    ("first_login", "setup", 3, "days_since_login < 91"),
    ("users_invited", "setup", 7, "seats_active >= 2"),
    ("first_value", "setup", 7, "ttfv_days >= 0"),
    ("integration_connected", "setup", 10, "feature_breadth > 0"),
    ("core_features_used", "setup", 14, "core_adoption >= 0.5"),
    ("three_active_users", "setup", 14, "seats_active >= 3"),
    ("first_business_outcome", "setup", 30, "goal_attainment > 0 and ttfv_days <= 30"),
    ("weekly_habit", "adoption", 45, "active_days_per_week >= 2"),
    ("team_usage", "adoption", 60, "active_user_share >= 0.5"),
    ("feature_adoption_70", "adoption", 60, "core_adoption >= 0.7"),
    ("advanced_features", "optimization", 75, "advanced_adoption > 0"),
    ("roi_shown", "optimization", 90, "roi_pct >= 100"),
    ("graduated", "optimization", 90,
     "tenure_days >= 60 and core_adoption >= 0.7 and roi_pct >= 100 and active_user_share >= 0.5"),
)  # fmt: skip
STATUSES = ("on_track", "behind", "stuck")
STUCK_MISSED = 3
STUCK_NO_LOGIN_DAYS = 14


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
