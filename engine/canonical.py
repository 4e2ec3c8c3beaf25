"""Canonical vocabulary shared by connectors, the store and the engine.

The engine never sees vendor records: it sees these names only. Keeping them in one module means a renamed
metric breaks loudly at import time instead of silently producing NaN factors.
"""

from __future__ import annotations

from enum import StrEnum


class Segment(StrEnum):
    SMB = "smb"
    MID_MARKET = "mid_market"
    ENTERPRISE = "enterprise"


class EventKind(StrEnum):
    """Kinds of activity event. `count` and `value` carry kind-specific meaning (see EVENT_SEMANTICS)."""

    LOGIN = "login"
    FEATURE_USED = "feature_used"
    API_CALL = "api_call"
    TICKET_OPENED = "ticket_opened"
    TICKET_CLOSED = "ticket_closed"
    ESCALATION = "escalation"
    SELF_SERVICE = "self_service"
    SURVEY_RESPONSE = "survey_response"
    MEETING = "meeting"
    OUTREACH = "outreach"
    EMAIL_REPLIED = "email_replied"
    SEAT_CHANGE = "seat_change"
    PLAN_CHANGE = "plan_change"
    MILESTONE = "milestone"
    DATA_EXPORT = "data_export"
    CANCELLATION_INQUIRY = "cancellation_inquiry"
    COMPETITOR_MENTION = "competitor_mention"


EVENT_SEMANTICS: dict[EventKind, str] = {
    EventKind.LOGIN: "count = sessions, value = total session minutes (one row may aggregate a contact-day)",
    EventKind.FEATURE_USED: "feature = feature key, count = uses",
    EventKind.API_CALL: "count = calls",
    EventKind.TICKET_OPENED: "count = tickets",
    EventKind.TICKET_CLOSED: "count = tickets, value = total resolution hours",
    EventKind.ESCALATION: "count = escalations",
    EventKind.SELF_SERVICE: "count = help-centre articles or answers used instead of a ticket",
    EventKind.SURVEY_RESPONSE: "value = score (NPS 0-10 unless properties.survey says otherwise)",
    EventKind.MEETING: "count = meetings held with the customer",
    EventKind.OUTREACH: "count = CSM messages sent to the customer",
    EventKind.EMAIL_REPLIED: "count = customer replies to CSM outreach",
    EventKind.SEAT_CHANGE: "value = change in purchased seats (negative = contraction)",
    EventKind.PLAN_CHANGE: "value = +1 upgrade / -1 downgrade; feature = the new plan key",
    EventKind.MILESTONE: "feature = milestone key (first_value, setup_complete, ...)",
    EventKind.DATA_EXPORT: "count = exports",
    EventKind.CANCELLATION_INQUIRY: "count = inquiries",
    EventKind.COMPETITOR_MENTION: "count = mentions",
}


class Band(StrEnum):
    HEALTHY = "healthy"
    AT_RISK = "at_risk"
    CRITICAL = "critical"
    CHURNING = "churning"


BANDS_BEST_FIRST: tuple[Band, ...] = (Band.HEALTHY, Band.AT_RISK, Band.CRITICAL, Band.CHURNING)


class Factor(StrEnum):
    ADOPTION = "adoption"
    ENGAGEMENT = "engagement"
    SUPPORT = "support"
    OUTCOMES = "outcomes"
    RELATIONSHIP = "relationship"
    EXPANSION = "expansion"


FACTORS: tuple[Factor, ...] = tuple(Factor)
# A factor's name as a CSM reads it (the design's names); the keys stay the vocabulary of configs and the store.
FACTOR_LABELS: dict[Factor, str] = {
    Factor.ADOPTION: "Product adoption",
    Factor.ENGAGEMENT: "Usage engagement",
    Factor.SUPPORT: "Support health",
    Factor.OUTCOMES: "Business outcomes",
    Factor.RELATIONSHIP: "Relationship strength",
    Factor.EXPANSION: "Expansion indicators",
}

# Account metrics the health engine reads: one row per account, NaN where the account has no data.
# They are derived from activity events and account fields as of a scoring date (see app/store/metrics.py).
METRIC_COLUMNS: dict[str, str] = {
    "core_adoption": "share (0-1) of the product's core features used in the last 30 days",
    "feature_breadth": "share (0-1) of all product features used in the last 30 days",
    "ttfv_days": "days from customer_since to the first_value milestone (NaN: not reached)",
    "tenure_days": "days from customer_since to the scoring date",
    "active_days_per_week": "distinct days with a login per week over the last 28 days (0-7)",
    "avg_session_minutes": "average session length over the last 28 days",
    "active_user_share": "seats_active / seats_purchased (0-1)",
    "tickets_per_seat_30d": "tickets opened in the last 30 days per active seat",
    "avg_resolution_hours": "average resolution time of tickets closed in the last 90 days",
    "escalations_90d": "escalations in the last 90 days",
    "self_service_share": "self-service answers / (self-service + tickets) over the last 90 days",
    "roi_pct": "customer-reported or computed ROI, percent",
    "goal_attainment": "share (0-1) of agreed success goals met",
    "has_champion": "1 if a contact is flagged champion, 0 if contacts exist but none is, NaN if no contacts",
    "responsiveness": "customer replies / CSM outreach over the last 90 days (0-1, NaN if no outreach)",
    "seat_growth_90d": "relative change of purchased seats over the last 90 days (-1..)",
    "plan_change_90d": "net plan moves over the last 90 days (+1 upgrade, -1 downgrade)",
}

# Further per-account signals the programs and the churn model read (same source and NaN rule as METRIC_COLUMNS).
SIGNAL_COLUMNS: dict[str, str] = {
    "days_since_login": "days since the last login (91 when none in the last 90 days)",
    "days_since_feature_use": "days since any feature was last used (91 when none in the last 90 days)",
    "usage_change_28d": "logins in the last 28 days relative to the 28 days before, minus 1 (-0.5 = halved)",
    "churn_signals_30d": "data exports, cancellation inquiries and competitor mentions in the last 30 days",
    "nps_90d": "average survey score (NPS 0-10) over the last 90 days",
    "seats_at_as_of": "purchased seats on the scoring date",
    "advanced_adoption": "share (0-1) of the non-core features used in the last 30 days",
}
