"""The account card: everything a CSM needs on the record they have open, read from the store in two queries.

One query reads the account with its latest score, the override in force and its last login day (correlated
sub-selects, so it is one round trip on SQLite and PostgreSQL alike); a second reads the lists (open tasks, the
program engine's enrollments with the step each is at, enrollment requests, onboarding milestones met, recent
touchpoints) as one UNION ALL. No pandas: the web process that serves cards stays free of the scoring stack.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from app.cards.overrides import active_override_filter
from app.cards.program_block import (
    ONBOARDING_PROGRAM,
    PROGRAM_LIMIT,
    RECENT_DAYS,
    STEP_EVENTS,
    enrollment,
    onboarding,
    program_title,
)
from app.cards.program_block import iso as _iso
from app.store.models import (
    Account,
    AccountDay,
    Action,
    ActivityEvent,
    BandOverride,
    ExternalId,
    ProgramEnrollment,
    ProgramMilestone,
    Score,
    program_history,
)
from app.store.open_tasks import open_since, open_task
from engine.canonical import BANDS_BEST_FIRST, EventKind, Factor

LIST_LIMIT = 5
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


# Statements are built once, with the account and the time as bound parameters: building them per request cost more
# than running them.
ACCOUNT_ID = bindparam("account_id", type_=Integer)
NOW = bindparam("now", type_=DateTime)
OPEN_SINCE = bindparam("open_since", type_=DateTime)
ENDED_SINCE = bindparam("ended_since", type_=DateTime)


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


def _last_login():
    """The last day with a login (account_days' key is account, day: an index range read)."""
    return (
        select(func.max(AccountDay.day))
        .where(AccountDay.account_id == ACCOUNT_ID, AccountDay.logins > 0)
        .scalar_subquery()
        .label("last_login")
    )


HEADER_COLUMNS = (
    Account.id, Account.key, Account.name, Account.owner, Account.segment, Account.plan, Account.arr,
    Account.renewal_date, Account.customer_since, Account.lifecycle_stage, Account.status,
    Score.as_of, Score.health, Score.band, Score.band_computed, Score.trend_7d, Score.trend_30d, Score.drivers,
    Score.recommended_action, Score.churn_probability, Score.churn_horizon_days, Score.days_to_churn,
    Score.risk_drivers, Score.risk, Score.risk_source, Score.early_warning, Score.warning_horizon_days,
    Score.expansion_score, Score.expansion_type, Score.revenue_potential,
    BandOverride.id.label("override_id"), BandOverride.band.label("override_band"),
    BandOverride.reason.label("override_reason"), BandOverride.author.label("override_author"),
    BandOverride.created_at.label("override_created_at"), BandOverride.expires_at.label("override_expires_at"),
)  # fmt: skip


def _header_query():
    """Account + latest score + override in force + last login day, in one statement."""
    return (
        select(*HEADER_COLUMNS, _last_login())
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


# The lists statement's columns: each part fills those it has, the others are typed NULLs.
LIST_COLUMNS = {
    "title": String, "status": String, "at": DateTime, "detail": String, "day": Date, "version": Integer,
    "control": Boolean, "since": DateTime, "ended": DateTime, "step": String, "channel": String,
    "step_outcome": String, "step_at": DateTime,
}  # fmt: skip


def _part(section: str, **values) -> list:
    return [literal(section).label("section")] + [
        (values[name] if name in values else cast(null(), kind)).label(name) for name, kind in LIST_COLUMNS.items()
    ]


def _of_enrollment(history):
    """History rows of the card's enrollment: by its account too, which leads the index a sent step's action is
    found by (the derived rows of program_history have no index on the enrollment)."""
    return and_(history.c.enrollment_id == ProgramEnrollment.id, history.c.account_id == ProgramEnrollment.account_id)


STEP = program_history.alias("step")  # the enrollment's latest step, on the card


def _step_identity(history):
    """A history row's kind and key: unique within the enrollment, where the key alone is not (a step covered or
    suppressed and, after a newer program version moved it, sent: its event and its action share the key)."""
    return history.c.kind + ":" + history.c.dedupe_key


def _last_step_identity():
    """The identity (`_step_identity`) of the enrollment's latest step in its history (sent, covered, suppressed or
    held), correlated on the enrollment."""
    last = program_history.alias("last_step")
    return (
        select(_step_identity(last))
        .where(_of_enrollment(last), last.c.kind.in_(STEP_EVENTS))
        .order_by(last.c.at.desc(), last.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _lists_query():
    """Open tasks, program enrollments (active ones first, those in a control group after them, then the recently
    ended; each with its last step), pending enrollment requests, onboarding milestones met and recent card
    touchpoints of one account, as one UNION ALL."""
    pe = ProgramEnrollment
    tasks = (
        select(*_part("task", title=Action.payload["title"].as_string(), status=Action.status, at=Action.due,
                      detail=Action.playbook))
        .where(Action.account_id == ACCOUNT_ID, open_task(OPEN_SINCE))
        .order_by(Action.due.desc(), Action.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    running = or_(pe.status == "active", and_(pe.status.in_(("completed", "exited")), pe.ended_at >= ENDED_SINCE))
    programs = (
        select(*_part("program", title=pe.program, status=pe.status, at=pe.next_due_at, detail=pe.exit_reason,
                      version=pe.version, control=pe.holdout, since=pe.entered_at, ended=pe.ended_at,
                      step=STEP.c.step, channel=STEP.c.channel, step_outcome=STEP.c.kind, step_at=STEP.c.at))
        .select_from(pe)
        .outerjoin(STEP, and_(_of_enrollment(STEP), _step_identity(STEP) == _last_step_identity()))
        .where(pe.account_id == ACCOUNT_ID, running)
        .order_by(case((pe.status == "active", 0), else_=1), case((pe.holdout.is_(True), 1), else_=0),
                  pe.entered_at.desc(), pe.id.desc())
        .limit(PROGRAM_LIMIT)
    )  # fmt: skip
    requests = (
        select(*_part("request", title=pe.program, status=pe.status, at=pe.requested_at, detail=pe.requested_by))
        .where(pe.account_id == ACCOUNT_ID, pe.status == "requested")
        .order_by(pe.requested_at.desc(), pe.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    milestones = select(*_part("milestone", title=ProgramMilestone.milestone, day=ProgramMilestone.met_on)).where(
        ProgramMilestone.account_id == ACCOUNT_ID
    )
    touchpoints = (
        select(*_part("touchpoint", title=ActivityEvent.properties["channel"].as_string(),
                      status=ActivityEvent.properties["note"].as_string(), at=ActivityEvent.occurred_at,
                      detail=ActivityEvent.properties["author"].as_string()))
        .where(ActivityEvent.account_id == ACCOUNT_ID, ActivityEvent.source == TOUCHPOINT_SOURCE)
        .order_by(ActivityEvent.occurred_at.desc(), ActivityEvent.id.desc())
        .limit(LIST_LIMIT)
    )  # fmt: skip
    parts = [q.subquery() for q in (tasks, programs, requests, milestones, touchpoints)]
    return union_all(*(select(*p.c) for p in parts))


HEADER_QUERY = _header_query()
LISTS_QUERY = _lists_query()


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


def _health(row) -> dict[str, Any]:
    override = None
    if row.override_id is not None:
        override = {
            "band": row.override_band, "band_label": BAND_LABELS.get(row.override_band),
            "reason": row.override_reason, "author": row.override_author,
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
        "computed_band_label": BAND_LABELS.get(computed),
        "trend_7d": _number(row.trend_7d, 1),
        "trend_30d": _number(row.trend_30d, 1),
        "override": override,
    }


def _lists(conn: Connection, account_id: int, now: datetime) -> dict[str, Any]:
    lists: dict[str, Any] = {"task": [], "program": [], "request": [], "milestone": {}, "touchpoint": []}
    params = {"account_id": account_id, "open_since": open_since(now.date()),
              "ended_since": now - timedelta(days=RECENT_DAYS)}  # fmt: skip
    for row in conn.execute(LISTS_QUERY, params):
        if row.section == "task":
            lists["task"].append({"title": row.title, "status": row.status, "due": _iso(row.at),
                                  "program": row.detail})  # fmt: skip
        elif row.section == "program":
            lists["program"].append(row)
        elif row.section == "request":
            lists["request"].append({"program": row.title, "status": row.status, "requested_at": _iso(row.at),
                                     "requested_by": row.detail})  # fmt: skip
        elif row.section == "milestone":
            lists["milestone"][row.title] = row.day
        else:
            lists["touchpoint"].append({"kind": row.title, "note": row.status, "occurred_at": _iso(row.at),
                                        "author": row.detail})  # fmt: skip
    return lists


def available_actions(programs: tuple[str, ...], titles: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The actions every surface offers, with their choices and the words to show for them (so a surface needs no
    vocabulary of its own)."""
    program_labels = {p: program_title(p, titles or {}) for p in programs}
    return [
        {"type": "enroll", "label": "Enroll in a program", "programs": list(programs),
         "program_labels": program_labels},
        {"type": "override", "label": "Snooze / override band", "bands": [b.value for b in BANDS_BEST_FIRST],
         "band_labels": dict(BAND_LABELS), "max_days": 90},
        {"type": "clear_override", "label": "End override"},
        {"type": "touchpoint", "label": "Log a touchpoint", "kinds": list(TOUCHPOINT_KINDS)},
    ]  # fmt: skip


def build_card(
    conn: Connection,
    account_id: int,
    programs: tuple[str, ...],
    now: datetime | None = None,
    titles: dict[str, str] | None = None,
) -> dict | None:
    """The card of one account (two statements), or None when there is no such account; `titles` names the
    programs (app/programs/catalog.program_titles), else their keys are shown in words."""
    now = now or datetime.now()
    row = conn.execute(HEADER_QUERY, {"account_id": account_id, "now": now}).first()
    if row is None:
        return None
    lists = _lists(conn, row.id, now)
    enrollments = [enrollment(r, titles or {}) for r in lists["program"]]
    requests = [{**r, "title": program_title(r["program"], titles or {})} for r in lists["request"]]
    control = any(e["control"] for e in enrollments if e["program"] == ONBOARDING_PROGRAM)
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
        "onboarding": onboarding(row.customer_since, row.last_login, lists["milestone"], control, now.date()),
        "program": {"enrollments": enrollments, "enrollment_requests": requests},
        "tasks": lists["task"],
        "touchpoints": lists["touchpoint"],
        "actions": available_actions(programs, titles),
    }  # fmt: skip
