"""The account card: everything a CSM needs on the record they have open, read from the store in two queries.

One query reads the account with its latest score and the override in force (correlated sub-selects, so it is one
round trip on SQLite and PostgreSQL alike); a second reads the lists (open tasks, enrollment requests, recent
touchpoints) as one UNION ALL. No pandas: the web process that serves cards stays free of the scoring stack.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Integer, bindparam, literal, select, union_all
from sqlalchemy.orm import aliased

from app.cards.overrides import active_override_filter
from app.store.models import Account, Action, ActivityEvent, BandOverride, ExternalId, ProgramEnrollment, Score
from engine.canonical import BANDS_BEST_FIRST, EventKind, Factor

LIST_LIMIT = 5
OPEN_TASK_STATUSES = ("planned", "released")
TOUCHPOINT_SOURCE = "card"  # activity events logged from a card carry this source
TOUCHPOINT_KINDS = {"meeting": EventKind.MEETING, "call": EventKind.MEETING, "email": EventKind.OUTREACH}
BAND_LABELS = {"healthy": "Healthy", "at_risk": "At risk", "critical": "Critical", "churning": "Churning"}
# What a weak health factor means, in the words a CSM would use.
DRIVER_WORDS = {
    Factor.ADOPTION: "Few of the core features are in use",
    Factor.ENGAGEMENT: "Logins and session time are low",
    Factor.SUPPORT: "Support load is heavy or slow to resolve",
    Factor.OUTCOMES: "Business goals and ROI are behind plan",
    Factor.RELATIONSHIP: "No active champion, or replies are slow",
    Factor.EXPANSION: "Seat and plan use is flat",
}
# Onboarding phases by tenure (days since the account became a customer): shown until programs track it.
ONBOARDING_PHASES = ((14, "Kickoff"), (30, "First value"), (90, "Adoption"))
GRADUATED = "Onboarded"
GRADUATION_DAYS = 90


# Statements are built once, with the account and the time as bound parameters: building them per request cost more
# than running them.
ACCOUNT_ID = bindparam("account_id", type_=Integer)
NOW = bindparam("now", type_=DateTime)


def _latest_score_id():
    """Uncorrelated (the account is a parameter), so the database evaluates it once and joins Score on its key."""
    latest = aliased(Score)
    return (
        select(latest.id)
        .where(latest.account_id == ACCOUNT_ID)
        .order_by(latest.as_of.desc(), latest.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _active_override_id():
    active = aliased(BandOverride)
    return (
        select(active.id)
        .where(active.account_id == ACCOUNT_ID, *active_override_filter(NOW, active))
        .order_by(active.created_at.desc(), active.id.desc())
        .limit(1)
        .scalar_subquery()
    )


HEADER_COLUMNS = (
    Account.id, Account.key, Account.name, Account.owner, Account.segment, Account.plan, Account.arr,
    Account.renewal_date, Account.customer_since, Account.first_value_at, Account.first_activity_at,
    Account.lifecycle_stage, Account.status,
    Score.as_of, Score.health, Score.band, Score.band_computed, Score.trend_7d, Score.trend_30d, Score.drivers,
    Score.recommended_action, Score.churn_probability, Score.churn_horizon_days, Score.days_to_churn,
    Score.risk_drivers, Score.risk, Score.risk_source, Score.early_warning, Score.warning_horizon_days,
    Score.expansion_score, Score.expansion_type, Score.revenue_potential,
    BandOverride.id.label("override_id"), BandOverride.band.label("override_band"),
    BandOverride.reason.label("override_reason"), BandOverride.author.label("override_author"),
    BandOverride.created_at.label("override_created_at"), BandOverride.expires_at.label("override_expires_at"),
)  # fmt: skip


def _header_query():
    """Account + latest score + override in force, in one statement."""
    return (
        select(*HEADER_COLUMNS)
        .select_from(Account)
        .outerjoin(Score, Score.id == _latest_score_id())
        .outerjoin(BandOverride, BandOverride.id == _active_override_id())
        .where(Account.id == ACCOUNT_ID)
    )


def resolve_account(vendor: str, obj: str, external_id: str):
    """WHERE clause (on Account) for the account a vendor's company record resolved to (identity resolution's
    ExternalId); the web layer reads the account id with it, then builds the card."""
    linked = select(ExternalId.account_id).where(
        ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.external_id == external_id
    )
    return Account.id.in_(linked.scalar_subquery())


def _lists_query():
    """Open tasks, enrollment requests and recent card touchpoints of one account, as one UNION ALL."""
    tasks = (
        select(literal("task").label("section"), Action.payload["title"].as_string().label("title"),
               Action.status.label("status"), Action.due.label("at"), Action.playbook.label("detail"))
        .where(Action.account_id == ACCOUNT_ID, Action.kind == "crm_task", Action.status.in_(OPEN_TASK_STATUSES))
        .order_by(Action.due.desc(), Action.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    enrollments = (
        select(literal("enrollment"), ProgramEnrollment.program, ProgramEnrollment.status,
               ProgramEnrollment.requested_at, ProgramEnrollment.requested_by)
        .where(ProgramEnrollment.account_id == ACCOUNT_ID)
        .order_by(ProgramEnrollment.requested_at.desc(), ProgramEnrollment.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    touchpoints = (
        select(literal("touchpoint"), ActivityEvent.properties["channel"].as_string(),
               ActivityEvent.properties["note"].as_string(), ActivityEvent.occurred_at,
               ActivityEvent.properties["author"].as_string())
        .where(ActivityEvent.account_id == ACCOUNT_ID, ActivityEvent.source == TOUCHPOINT_SOURCE)
        .order_by(ActivityEvent.occurred_at.desc(), ActivityEvent.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    parts = [q.subquery() for q in (tasks, enrollments, touchpoints)]
    return union_all(*(select(*p.c) for p in parts))


HEADER_QUERY = _header_query()
LISTS_QUERY = _lists_query()


def _iso(value: date | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat() if value is not None else None


def _number(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def plain_drivers(health_drivers: list | None, risk_drivers: list | None) -> list[str]:
    """Why the score is what it is, in words: the churn model's drivers first (when a model ran), then the weak
    health factors."""
    words = [
        f"{d['label']} is {d['relation']} than typical"
        for d in (risk_drivers or [])
        if isinstance(d, dict) and d.get("label") and d.get("relation") in ("higher", "lower")
    ]
    words += [DRIVER_WORDS[Factor(d)] for d in (health_drivers or []) if d in DRIVER_WORDS]
    return list(dict.fromkeys(words))[:3]


def churn_risk(row) -> dict[str, Any]:
    """The one risk scale (engine/learning/risk.py) as the card shows it: ``risk`` is the calibrated probability
    of churning within ``horizon_days`` (from the model, or from health before there is one: ``source``);
    ``early_warning`` is the longer-horizon model's flag (null without a model)."""
    return {
        "probability": _number(row.churn_probability, 3),
        "risk": None if row.risk is None else _number(row.risk / 100.0, 3),
        "source": row.risk_source,
        "horizon_days": row.churn_horizon_days,
        "days_to_churn": _number(row.days_to_churn, 0),
        "early_warning": row.early_warning,
        "warning_horizon_days": row.warning_horizon_days,
    }


def onboarding(row, today: date) -> dict[str, Any]:
    """Onboarding phase and milestones from tenure and first-value dates (no onboarding program exists yet)."""
    tenure = (today - row.customer_since).days if row.customer_since else None
    phase = None
    if tenure is not None and tenure >= 0:
        phase = next((name for limit, name in ONBOARDING_PHASES if tenure < limit), GRADUATED)
    graduated_on = row.customer_since + timedelta(days=GRADUATION_DAYS) if row.customer_since else None
    milestones = [
        {"name": "Product instrumented", "done": row.first_activity_at is not None,
         "date": _iso(row.first_activity_at)},
        {"name": "First value reached", "done": row.first_value_at is not None, "date": _iso(row.first_value_at)},
        {"name": f"{GRADUATION_DAYS}-day graduation", "done": tenure is not None and tenure >= GRADUATION_DAYS,
         "date": _iso(graduated_on)},
    ]  # fmt: skip
    return {"basis": "tenure", "phase": phase, "tenure_days": tenure, "milestones": milestones}


def _health(row) -> dict[str, Any]:
    override = None
    if row.override_id is not None:
        override = {
            "band": row.override_band, "reason": row.override_reason, "author": row.override_author,
            "created_at": _iso(row.override_created_at), "expires_at": _iso(row.override_expires_at),
        }  # fmt: skip
    # The band in effect: an override made after the last scoring shows at once; scoring then writes it back.
    band = row.override_band if override else row.band
    computed = row.band_computed or row.band
    if override is None and row.band_computed:  # the score was written under an override that has since ended
        band = row.band_computed
    return {
        "score": _number(row.health, 1),
        "band": band,
        "band_label": BAND_LABELS.get(band),
        "computed_band": computed,
        "trend_7d": _number(row.trend_7d, 1),
        "trend_30d": _number(row.trend_30d, 1),
        "override": override,
    }


def _lists(conn: Connection, account_id: int) -> dict[str, list[dict]]:
    tasks, enrollments, touchpoints = [], [], []
    for section, title, status, at, detail in conn.execute(LISTS_QUERY, {"account_id": account_id}):
        if section == "task":
            tasks.append({"title": title, "status": status, "due": _iso(at), "program": detail})
        elif section == "enrollment":
            enrollments.append({"program": title, "status": status, "requested_at": _iso(at), "requested_by": detail})
        else:
            touchpoints.append({"kind": title, "note": status, "occurred_at": _iso(at), "author": detail})
    return {"tasks": tasks, "enrollments": enrollments, "touchpoints": touchpoints}


def available_actions(programs: tuple[str, ...]) -> list[dict[str, Any]]:
    """The actions every surface offers, with their choices (so a surface needs no vocabulary of its own)."""
    return [
        {"type": "enroll", "label": "Enroll in a program", "programs": list(programs)},
        {"type": "override", "label": "Snooze / override band", "bands": [b.value for b in BANDS_BEST_FIRST],
         "max_days": 90},
        {"type": "clear_override", "label": "End override"},
        {"type": "touchpoint", "label": "Log a touchpoint", "kinds": list(TOUCHPOINT_KINDS)},
    ]  # fmt: skip


def build_card(
    conn: Connection, account_id: int, programs: tuple[str, ...], now: datetime | None = None
) -> dict | None:
    """The card of one account (two statements), or None when there is no such account."""
    now = now or datetime.now()
    row = conn.execute(HEADER_QUERY, {"account_id": account_id, "now": now}).first()
    if row is None:
        return None
    lists = _lists(conn, row.id)
    return {
        "account": {
            "id": row.id, "key": row.key, "name": row.name, "owner": row.owner, "segment": row.segment,
            "plan": row.plan, "arr": _number(row.arr, 2), "renewal_date": _iso(row.renewal_date),
            "lifecycle_stage": row.lifecycle_stage, "status": row.status,
        },
        "as_of": _iso(row.as_of),
        "health": _health(row),
        "drivers": plain_drivers(row.drivers, row.risk_drivers),
        "recommended_action": row.recommended_action,
        "churn": churn_risk(row),
        "expansion": {"type": row.expansion_type, "score": _number(row.expansion_score, 1),
                      "potential": _number(row.revenue_potential, 2)},
        "onboarding": onboarding(row, now.date()),
        "program": {"active_step": None, "enrollment_requests": lists["enrollments"]},
        "tasks": lists["tasks"],
        "touchpoints": lists["touchpoints"],
        "actions": available_actions(programs),
    }  # fmt: skip
