"""The canonical schema a mapping may write to, in one place: field names, their kind and allowed values per entity.

It mirrors the store's loaders (app/store/load.py) without importing them, so connectors stay below `app` in the
layering; tests/test_mapping.py checks the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.canonical import EventKind, Segment

# Kinds of canonical value. `domain` and `email` are text that identity resolution matches on, so a mapping must
# normalize them with the type of the same name rather than copy them as plain strings.
KINDS = ("string", "domain", "email", "number", "integer", "boolean", "date", "datetime")

# Mapping types (README) that may feed each canonical kind; `enum` may feed any kind (its values are converted).
TYPES_FOR_KIND: dict[str, tuple[str, ...]] = {
    "string": ("string", "enum", "email", "domain"),
    "domain": ("domain",),
    "email": ("email",),
    "number": ("number", "integer", "enum"),
    "integer": ("integer", "enum"),
    "boolean": ("boolean", "enum"),
    "date": ("date", "datetime"),
    "datetime": ("datetime", "date"),
}
TYPES = ("string", "number", "integer", "boolean", "date", "datetime", "domain", "email", "enum")
# CRM field types a push mapping may write each kind of score value into: any value can be shown as text, a number
# rounds into an integer field, text can fill a picklist; a number cannot become a date (nor the other way).
PUSH_TYPES_FOR_KIND: dict[str, tuple[str, ...]] = {
    "string": ("string", "enum"),
    "number": ("number", "integer", "string"),
    "integer": ("integer", "number", "string"),
    "boolean": ("boolean", "string"),
    "date": ("date", "datetime", "string"),
    "datetime": ("datetime", "date", "string"),
}
ACCOUNT_STATUSES = ("active", "churned", "deleted")


@dataclass(frozen=True)
class CanonicalField:
    name: str
    kind: str
    doc: str
    choices: tuple[str, ...] | None = None
    required: bool = False  # the entity cannot be stored without it, whatever the mapping says


def _fields(*fields: CanonicalField) -> dict[str, CanonicalField]:
    return {f.name: f for f in fields}


F = CanonicalField
SEGMENTS = tuple(s.value for s in Segment)
EVENT_KINDS = tuple(k.value for k in EventKind)

ACCOUNT_SCHEMA = _fields(
    F("key", "string", "the product's own account id, when the CRM holds it: identity resolution matches on it"),
    F("name", "string", "company name", required=True),
    F("domain", "domain", "primary web domain; identity resolution matches accounts across vendors on it"),
    F("segment", "string", "smb / mid_market / enterprise", choices=SEGMENTS),
    F("plan", "string", "product plan"),
    F("arr", "number", "annual recurring revenue"),
    F("seats_purchased", "integer", "seats bought"),
    F("seats_active", "integer", "seats in use"),
    F("api_limit", "integer", "API calls allowed per period"),
    F("api_used", "integer", "API calls used this period"),
    F("storage_limit_gb", "number", "storage allowed"),
    F("storage_used_gb", "number", "storage used"),
    F("customer_since", "date", "start of the relationship"),
    F("renewal_date", "date", "next renewal"),
    F("owner", "string", "CSM owning the account"),
    F("lifecycle_stage", "string", "onboarding / adopted / ..."),
    F("status", "string", "active / churned (deleted is set by the sync)", choices=ACCOUNT_STATUSES),
    F("churned_at", "date", "day the customer churned"),
    F("roi_pct", "number", "customer-reported ROI, percent"),
    F("goal_attainment", "number", "share (0-1) of success goals met"),
    F("first_value_at", "date", "day the customer first got value (else derived from first_value milestones)"),
    F("timezone", "string", "IANA timezone (e.g. Europe/Berlin): quiet periods are in the account's local time"),
    F("referred_by", "string", "who referred this company: the referrer's account key, domain or name"),
)
CONTACT_SCHEMA = _fields(
    F("email", "email", "the identity contacts share across vendors", required=True),
    F("name", "string", "full name"),
    F("role", "string", "job role"),
    F("is_champion", "boolean", "internal champion"),
    F("is_exec_sponsor", "boolean", "executive sponsor"),
    F("last_seen", "datetime", "last activity"),
    F("unsubscribed", "boolean", "unsubscribed from email: no program message goes to this contact"),
)
EVENT_SCHEMA = _fields(
    F("occurred_at", "datetime", "when it happened", required=True),
    F("kind", "string", "event kind (engine/canonical.py EventKind)", choices=EVENT_KINDS, required=True),
    F("feature", "string", "feature or milestone key"),
    F("count", "integer", "how many (default 1)"),
    F("value", "number", "kind-specific value (engine/canonical.py EVENT_SEMANTICS)"),
    F("contact_email", "email", "the contact it concerns, if any"),
)
# What a push mapping may write to a CRM: the columns of a score (app/store/models.py Score). Write-back
# (app/writeback/outbox.py) plans every one of them, so whatever a push mapping names reaches the CRM.
PUSH_SCHEMA = _fields(
    F("health", "number", "health score 0-100"),
    F("band", "string", "healthy / at_risk / critical / churning"),
    F("f_adoption", "number", "product adoption factor"),
    F("f_engagement", "number", "usage engagement factor"),
    F("f_support", "number", "support health factor"),
    F("f_outcomes", "number", "business outcomes factor"),
    F("f_relationship", "number", "relationship strength factor"),
    F("f_expansion", "number", "expansion indicators factor"),
    F("coverage", "number", "share of factors with data"),
    F("trend_7d", "number", "health change over 7 days"),
    F("trend_30d", "number", "health change over 30 days"),
    F("drivers", "string", "factors pulling the score down"),
    F("recommended_action", "string", "next best action"),
    F("churn_probability", "number", "probability of churn within the horizon"),
    F("churn_horizon_days", "integer", "horizon of the churn probability"),
    F("days_to_churn", "number", "survival model's median time to churn, days"),
    F("risk", "number", "the one risk scale 0-100: calibrated churn probability within the horizon x 100"),
    F(
        "risk_source",
        "string",
        "what produced risk: model (the churn model) or health (calibrated health)",
        choices=("model", "health"),
    ),
    F("risk_drivers", "string", "top churn risk drivers"),
    F("early_warning", "boolean", "early-warning flag: likely to churn within warning_horizon_days (60-90)"),
    F("warning_horizon_days", "integer", "horizon of the early-warning model"),
    F("expansion_score", "number", "expansion score 0-100"),
    F("expansion_type", "string", "seat / feature / plan upgrade"),
    F("revenue_potential", "number", "expansion revenue potential"),
    F("model_version", "string", "churn model version"),
    F("as_of", "date", "day the score is as of"),
    F("computed_at", "datetime", "when the score was computed"),
)

ENTITY_SCHEMAS: dict[str, dict[str, CanonicalField]] = {
    "account": ACCOUNT_SCHEMA,
    "contact": CONTACT_SCHEMA,
    "event": EVENT_SCHEMA,
}
ENTITIES = tuple(ENTITY_SCHEMAS)
