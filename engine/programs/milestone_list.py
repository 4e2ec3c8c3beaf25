"""The 15 onboarding milestones (DESIGN §7, days 0-90) and the on track / behind / stuck rule, as plain data: what
the scoring side evaluates over frames (engine/programs/milestones.py) and what the account card reads for one
account, without importing pandas into the web process that serves cards.
"""

from __future__ import annotations

ONBOARDING_DAYS = 90
TRACKED_DAYS = 2 * ONBOARDING_DAYS  # accounts younger than this have their milestones recorded
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
# How a CSM reads each milestone.
LABELS = {
    "welcome": "Welcome sent", "champion_named": "Champion named", "first_login": "First login",
    "users_invited": "Users invited", "first_value": "First value", "integration_connected": "Integration connected",
    "core_features_used": "Core features used", "three_active_users": "Three active users",
    "first_business_outcome": "First business outcome", "weekly_habit": "Weekly habit", "team_usage": "Team usage",
    "feature_adoption_70": "70 % feature adoption", "advanced_features": "Advanced features", "roi_shown": "ROI shown",
    "graduated": "Graduated",
}  # fmt: skip
STATUSES = ("on_track", "behind", "stuck")
STUCK_MISSED = 3
STUCK_NO_LOGIN_DAYS = 14


def status_of(missed: int, days_since_login: float) -> str:
    """One account's status: stuck with STUCK_MISSED overdue milestones or STUCK_NO_LOGIN_DAYS without a login,
    behind with any overdue, else on track (the rule engine/programs/milestones.onboarding_status applies to a
    whole book at once)."""
    if missed >= STUCK_MISSED or days_since_login >= STUCK_NO_LOGIN_DAYS:
        return "stuck"
    return "behind" if missed > 0 else "on_track"
