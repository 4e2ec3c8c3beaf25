"""What a demo book is asked to look like (BookSpec) and the product catalogue it is simulated against.

Kept apart from the simulation so the sandbox servers, the dashboard and tests can import the catalogue
(features, plans, limits) without pulling in the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The product: a B2B project-management SaaS. Core features are what the health score's adoption factor counts.
CORE_FEATURES: tuple[str, ...] = ("tasks", "projects", "boards", "reports", "automations", "dashboards")
FEATURES: tuple[str, ...] = (
    *CORE_FEATURES,
    "gantt", "time_tracking", "docs", "goals", "workload", "portfolios", "integrations", "custom_fields", "api",
)  # fmt: skip
# Milestone keys carried in the `feature` column of milestone events.
MILESTONES: tuple[str, ...] = ("setup_complete", "first_value", "team_active")

PLANS: tuple[str, ...] = ("starter", "team", "business", "enterprise")
PLAN_SEAT_PRICE: tuple[float, ...] = (8.0, 12.0, 20.0, 32.0)  # list price, $ per seat per month
PLAN_API_LIMIT: tuple[int, ...] = (5_000, 25_000, 100_000, 1_000_000)  # API calls per month
PLAN_STORAGE_GB_PER_SEAT: tuple[float, ...] = (2.0, 10.0, 50.0, 200.0)

# ARR thresholds of the segments: < $10K SMB, $10K-50K mid-market, > $50K enterprise.
SEGMENT_ARR_THRESHOLDS: tuple[float, float] = (10_000.0, 50_000.0)

LIFECYCLE_STAGES: dict[str, str] = {
    "onboarding": "active, customer for less than 90 days",
    "adopted": "active, past onboarding, no risk flag from the CSM",
    "at_risk": "active, past onboarding, flagged by the CSM (visible disengagement or very low adoption)",
    "churned": "no longer a customer (status churned)",
}
CRMS: tuple[str, ...] = ("salesforce", "hubspot")


@dataclass(frozen=True)
class BookSpec:
    """The shape of a generated book; every default describes the reference case (see DESIGN.md).

    `monthly_churn` is the share of accounts active at the start of a calendar month that churn during it;
    `avg_arr` is the mean ARR of the accounts active at `as_of`. `days` is a year: the least history on which the
    90-day early-warning model trains and is judged on a time split (app/ml/early_warning.py).
    """

    seed: int = 7
    active_accounts: int = 2500
    days: int = 365
    as_of: date = date(2026, 11, 1)
    avg_arr: float = 2400.0
    monthly_churn: float = 0.08
    csms: int = 5

    def __post_init__(self) -> None:
        if self.active_accounts < 10:
            raise ValueError("active_accounts must be at least 10")
        if self.days < 31:
            raise ValueError("days must cover at least one month (31)")
        if not 0.0 < self.monthly_churn < 0.5:
            raise ValueError("monthly_churn must be in (0, 0.5)")
        if self.avg_arr <= 0 or self.csms < 1:
            raise ValueError("avg_arr must be positive and csms at least 1")
