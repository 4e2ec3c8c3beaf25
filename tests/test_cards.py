"""The account card and its three CRM surfaces: signed requests as the vendors send them (sandbox/cards.py), refusals,
answers checked against the documented schemas, and actions that change the store and show on the next render."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from sqlalchemy import event, insert, select

from app.cards.model import BAND_LABELS, build_card
from app.programs.catalog import program_titles
from app.programs.tick import Limits, enroll, exit_enrollments, run_tick
from app.scoring import score_and_store
from app.settings import Settings
from app.store.load import load_accounts, load_contacts
from app.store.models import (
    Account,
    AccountDay,
    ActivityEvent,
    BandOverride,
    ExternalId,
    ProgramEnrollment,
    ProgramEvent,
    ProgramMilestone,
    Score,
)
from app.web import create_app
from connectors.intercom.canvas import MAX_CANVAS_BYTES, RISK_WORDS
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from sandbox.cards import CanvasKit, conversation_with_company, hubspot_fetch, salesforce_callout
from sandbox.intercom.openapi import SpecViolation
from sandbox.intercom.workspace import APP_ID, Workspace
from tests.factories import AS_OF, accounts_frame, contacts_frame
from tests.programs_support import program, scored
from tests.test_intercom_sandbox import checker  # noqa: F401 - the spec fixture (skips or fails without the spec)

HS_SECRET, SF_SECRET, IC_SECRET = "hubspot-client-secret", "salesforce-callout-secret", "intercom-client-secret"
PORTAL, ORG = 62515, "00D5e000000AbCdEAB"
COMPANY, SF_ACCOUNT = "1001", "0015e00000ABCDEAAA"
SCHEMA = json.loads(Path("app/cards/card.schema.json").read_text())
HS_URL, SF_URL = "http://localhost/cards/hubspot", "http://localhost/cards/salesforce"
IC_INIT, IC_SUBMIT = "http://localhost/cards/intercom/initialize", "http://localhost/cards/intercom/submit"


@pytest.fixture
def intercom() -> tuple[Workspace, str, str, str]:
    """An Intercom workspace with the account's company, its champion and a conversation."""
    ws = Workspace()
    return ws, *conversation_with_company(ws, "A0000", "Company 0", "champion@company0.example", "Pat Champion",
                                          "Where do I find the export?")  # fmt: skip


@pytest.fixture
def world(store, intercom):
    """The store with two scored accounts linked to a HubSpot company, a Salesforce Account and an Intercom company."""
    ws, contact_id, conversation_id, ic_company = intercom
    accounts = accounts_frame(2)
    with store.begin() as conn:
        ids = load_accounts(conn, accounts)
        load_contacts(conn, contacts_frame(accounts), ids)
        links = [("hubspot", "companies", COMPANY), ("salesforce", "Account", SF_ACCOUNT),
                 ("intercom", "companies", ic_company)]  # fmt: skip
        conn.execute(insert(ExternalId), [dict(account_id=ids["A0000"], vendor=v, object=o, external_id=x)
                                          for v, o, x in links])  # fmt: skip
        score_and_store(conn, date.today(), load_health_config())
    settings = Settings(
        database_url="sqlite://", hubspot_client_secret=HS_SECRET, hubspot_portal_id=str(PORTAL),
        intercom_client_secret=IC_SECRET, intercom_app_id=APP_ID, salesforce_callout_secret=SF_SECRET,
        salesforce_org_id=ORG,
    )  # fmt: skip
    client = create_app(settings, store).test_client()
    return client, CanvasKit(ws, IC_SECRET), contact_id, conversation_id, ids["A0000"]


def send(client, signed):
    return client.open(signed.url, method=signed.method, headers=signed.headers, data=signed.body)


def hubspot(client, method="GET", body=None, secret=HS_SECRET, portal=PORTAL, company=COMPANY, **kw):
    url = f"{HS_URL}?companyId={company}" if method == "GET" else HS_URL
    return send(client, hubspot_fetch(secret, url, portal_id=portal, method=method, body=body, **kw))


def salesforce(client, action=None, secret=SF_SECRET, org=ORG, account=SF_ACCOUNT, **kw):
    return send(client, salesforce_callout(secret, SF_URL, org_id=org, account_id=account, action=action, **kw))


def valid_card(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_data()) < 1_000_000  # hubspot.fetch's payload limit
    jsonschema.validate(response.json, SCHEMA, format_checker=jsonschema.FormatChecker())
    return response.json["card"]


def test_hubspot_card_answers_the_store(world, store) -> None:
    client, *_, account_id = world
    card = valid_card(hubspot(client))
    with store.connect() as conn:
        score = conn.execute(select(Score).where(Score.account_id == account_id)).one()
    assert card["account"]["name"] == "Company 0"
    assert card["health"]["score"] == round(score.health, 1) and card["health"]["band"] == score.band
    assert card["program"] == {"enrollments": [], "enrollment_requests": []}
    # Over a year a customer, no milestone recorded: onboarding was not tracked (nothing derived from tenure).
    day = (date.today() - (AS_OF - timedelta(days=200))).days
    assert card["onboarding"] == {"tracked": False, "day": day, "phase": None, "status": None, "control": False,
                                  "met": 0, "total": 15, "milestones": []}  # fmt: skip


@pytest.mark.parametrize(
    "change, status",
    [
        (dict(secret="another-secret"), 401),
        (dict(timestamp_ms=int((datetime.now() - timedelta(minutes=6)).timestamp() * 1000)), 401),
        (dict(portal=99999), 403),
        (dict(company="4040"), 404),
    ],
    ids=["wrong-signature", "stale", "unknown-portal", "unknown-company"],
)
def test_hubspot_refusals(world, change, status) -> None:
    client = world[0]
    assert hubspot(client, **change).status_code == status


def test_hubspot_refuses_unsigned_and_tampered_requests(world) -> None:
    client = world[0]
    signed = hubspot_fetch(HS_SECRET, f"{HS_URL}?companyId={COMPANY}", portal_id=PORTAL)
    unsigned = {k: v for k, v in signed.headers.items() if k != "X-HubSpot-Signature-v3"}
    assert client.get(signed.url, headers=unsigned).status_code == 401
    tampered = signed.url.replace(f"companyId={COMPANY}", "companyId=1002")
    assert client.get(tampered, headers=signed.headers).status_code == 401


def test_hubspot_action_changes_the_store_and_the_next_card(world, store) -> None:
    client, *_, account_id = world
    action = {"type": "override", "band": "healthy", "reason": "Exec sponsor re-engaged", "days": 7}
    posted = hubspot(client, "POST", {"companyId": COMPANY, "action": action})
    assert valid_card(posted)["health"]["band"] == "healthy"
    assert posted.json["notice"].startswith("Band set to Healthy until ")  # the band's label, as the card shows it
    with store.connect() as conn:
        override = conn.execute(select(BandOverride)).one()
    assert (override.account_id, override.reason, override.source) == (account_id, "Exec sponsor re-engaged", "hubspot")
    card = valid_card(hubspot(client))
    assert card["health"]["override"]["author"] == "csm@example.com"
    assert card["health"]["band"] == "healthy" and card["health"]["computed_band"] != "healthy"
    assert card["health"]["override"]["band_label"] == "Healthy"
    assert card["health"]["computed_band_label"] == BAND_LABELS[card["health"]["computed_band"]]


def test_refused_action_changes_nothing(world, store) -> None:
    client = world[0]
    bad = hubspot(client, "POST", {"companyId": COMPANY, "action": {"type": "enroll", "program": "nope"}})
    assert bad.status_code == 400 and "nope" in bad.json["error"]
    no_reason = hubspot(client, "POST", {"companyId": COMPANY, "action": {"type": "override", "band": "healthy"}})
    assert no_reason.status_code == 400
    with store.connect() as conn:
        assert conn.execute(select(ProgramEnrollment)).first() is None
        assert conn.execute(select(BandOverride)).first() is None


def test_override_is_honoured_by_rescoring_until_it_expires(world, store) -> None:
    client, *_, account_id = world
    action = {"type": "override", "band": "churning", "reason": "Budget freeze announced", "days": 10}
    hubspot(client, "POST", {"companyId": COMPANY, "action": action})
    config = load_health_config()
    with store.begin() as conn:
        held = score_and_store(conn, date.today(), config)
        later = score_and_store(conn, date.today() + timedelta(days=11), config)
        rows = conn.execute(select(Score.as_of, Score.band, Score.band_computed).where(Score.account_id == account_id)
                            .order_by(Score.id)).all()  # fmt: skip
    engine_band = rows[0].band  # the first scoring, before the override
    assert held.loc[account_id, "band"] == "churning" and rows[1].band == "churning"
    assert rows[1].band_computed == engine_band != "churning"
    assert later.loc[account_id, "band"] == engine_band and rows[2].band_computed is None
    assert held.drop(index=account_id)["band_computed"].isna().all()  # other accounts keep the engine's band


def test_intercom_initialize_and_submit_follow_the_spec(world, store, checker) -> None:  # noqa: F811
    client, kit, contact_id, conversation_id, account_id = world
    spec = checker
    spec.validate_object("initialize_request", kit.initialize_body(contact_id, conversation_id))
    first = send(client, kit.initialize(IC_INIT, contact_id, conversation_id))
    assert first.status_code == 200, first.get_data(as_text=True)
    spec.validate_object("initialize_response", first.json)
    assert len(first.get_data()) < MAX_CANVAS_BYTES
    canvas = first.json["canvas"]
    assert canvas["stored_data"] == {"account_id": account_id}
    assert {"text", "data-table", "button", "input", "dropdown"} <= {c["type"] for c in canvas["content"]["components"]}
    # The program choices read as words, not config keys (and not titles, which may name risk tiers).
    choices = next(c for c in canvas["content"]["components"] if c.get("id") == "program")["options"]
    assert "Onboarding setup stalled" in {o["text"] for o in choices}
    assert not any("_" in o["text"] or RISK_WORDS.search(o["text"]) for o in choices)

    inputs = {"note": "Agreed a rollout plan", "band": "at_risk"}
    spec.validate_object("submit_request", kit.submit_body(contact_id, conversation_id, canvas, "snooze:", inputs))
    held = send(client, kit.submit(IC_SUBMIT, contact_id, conversation_id, canvas, "snooze:", inputs))
    spec.validate_object("submit_response", held.json)
    texts = [c.get("text", "") for c in held.json["canvas"]["content"]["components"]]
    with store.connect() as conn:
        override = conn.execute(select(BandOverride.band, BandOverride.source, BandOverride.expires_at)).one()
    assert (override.band, override.source) == ("at_risk", "intercom")
    until = override.expires_at.date().isoformat()
    assert texts[1] == f"Held at Needs attention until {until}"  # the confirmation, in the inbox's band words
    assert any(t.startswith("Held at Needs attention by admin@cse-sandbox.example") for t in texts)
    assert not RISK_WORDS.search(" | ".join(shown_text(held.json["canvas"]))), texts

    logged = send(client, kit.submit(IC_SUBMIT, contact_id, conversation_id, held.json["canvas"], "log:call",
                                     {"note": "Walked through exports"}))  # fmt: skip
    spec.validate_object("submit_response", logged.json)
    with store.connect() as conn:
        touch = conn.execute(select(ActivityEvent).where(ActivityEvent.source == "card")).one()
    assert (touch.kind, touch.properties["note"]) == ("meeting", "Walked through exports")
    assert valid_card(hubspot(client))["touchpoints"][0]["note"] == "Walked through exports"

    asked = send(client, kit.submit(IC_SUBMIT, contact_id, conversation_id, logged.json["canvas"], "enroll:",
                                    {"program": "onboarding_setup_stalled"}))  # fmt: skip
    spec.validate_object("submit_response", asked.json)
    requests = next(c for c in asked.json["canvas"]["content"]["components"] if c.get("type") == "list"
                    and any(i.get("subtitle") == "requested" for i in c["items"]))["items"]  # fmt: skip
    assert [i["title"] for i in requests] == ["Onboarding setup stalled"]  # the request in words, not its key


def test_spec_check_is_strict(checker) -> None:  # noqa: F811
    """The validator does catch a canvas Intercom would refuse (so the checks above can fail)."""
    with pytest.raises(SpecViolation):
        checker.validate_object("initialize_response", {"canvas": {"content": {"components": [
            {"type": "button", "label": "no id, no action"}]}}})  # fmt: skip


def shown_text(node) -> list[str]:
    """Every string a teammate sees on a canvas (ids and types are not shown)."""
    if isinstance(node, list):
        return [t for item in node for t in shown_text(item)]
    if isinstance(node, dict):
        shown = ("text", "label", "placeholder", "field", "value", "title", "subtitle")
        return [v for k, v in node.items() if k in shown and isinstance(v, str)] + [
            t for v in node.values() if isinstance(v, list | dict) for t in shown_text(v)
        ]
    return []


def test_intercom_canvas_has_no_risk_wording(world, store) -> None:
    client, kit, contact_id, conversation_id, account_id = world
    with store.begin() as conn:  # a model-scored account whose task titles and drivers use risk words internally
        conn.execute(Score.__table__.update().where(Score.account_id == account_id).values(
            band="churning", churn_probability=0.81, days_to_churn=45, recommended_action="Call: high churn risk",
            risk=81.0, risk_source="model", churn_horizon_days=30, early_warning=True, warning_horizon_days=90,
            risk_drivers=[{"label": "Competitor mentions", "relation": "higher", "points": 12}]))  # fmt: skip
        conn.execute(insert(BandOverride).values(account_id=account_id, band="critical", reason="churn risk flagged",
                                                 author="csm", source="web", created_at=datetime.now(),
                                                 expires_at=datetime.now() + timedelta(days=3)))  # fmt: skip
    internal = valid_card(hubspot(client))
    assert RISK_WORDS.search(json.dumps(internal))  # the CRM card does say it …
    assert internal["churn"] == {
        "probability": 0.81,
        "risk": 0.81,
        "source": "model",
        "horizon_days": 30,
        "days_to_churn": 45,
        "early_warning": True,
        "warning_horizon_days": 90,
    }
    assert internal["drivers"][0] == "Competitor mentions is higher than typical"
    canvas = send(client, kit.initialize(IC_INIT, contact_id, conversation_id)).json
    shown = " | ".join(shown_text(canvas["canvas"]["content"]["components"]))
    assert not RISK_WORDS.search(shown), shown  # … the inbox canvas does not
    assert "19 % over 30 days (model)" in shown  # renewal outlook = 1 - risk, its horizon and source
    assert "Plan a check-in (next 90 days)" in shown  # the early-warning flag


def test_intercom_refusals(world) -> None:
    client, kit, contact_id, conversation_id, _ = world
    good = kit.initialize(IC_INIT, contact_id, conversation_id)
    assert client.post(IC_INIT, data=good.body).status_code == 401
    wrong = CanvasKit(kit.workspace, "not-the-secret").initialize(IC_INIT, contact_id, conversation_id)
    assert send(client, wrong).status_code == 401
    tampered = good.body.replace(b"Where do I find", b"Where can I find")
    assert client.post(IC_INIT, data=tampered, headers=good.headers).status_code == 401
    elsewhere = CanvasKit(kit.workspace, IC_SECRET, workspace_id="otherworkspace")
    assert send(client, elsewhere.initialize(IC_INIT, contact_id, conversation_id)).status_code == 403


def test_intercom_contact_without_account_gets_a_plain_canvas(world, checker) -> None:  # noqa: F811
    client, kit, *_ = world
    stranger = kit.workspace.add_contact({"email": "visitor@elsewhere.example"})
    conversation = kit.workspace.add_conversation(stranger["id"], "hello")
    answer = send(client, kit.initialize(IC_INIT, stranger["id"], conversation["id"]))
    checker.validate_object("initialize_response", answer.json)
    assert "not linked" in answer.json["canvas"]["content"]["components"][0]["text"]


def test_salesforce_card_and_enrollment(world, store) -> None:
    client, *_, account_id = world
    before = valid_card(salesforce(client))
    assert before["account"]["id"] == account_id
    enrolled = salesforce(client, {"type": "enroll", "program": "retention", "note": "after QBR"})
    assert enrolled.json["notice"] == "Enrollment in Retention requested"
    again = salesforce(client, {"type": "enroll", "program": "retention"})
    assert again.json["notice"] == "Enrollment in Retention is already requested"
    with store.connect() as conn:
        request = conn.execute(select(ProgramEnrollment)).one()
    assert (request.program, request.status, request.source) == ("retention", "requested", "salesforce")
    shown = valid_card(salesforce(client))["program"]
    assert shown["enrollments"] == [] and shown["enrollment_requests"][0]["program"] == "retention"
    assert shown["enrollment_requests"][0]["title"] == program_titles(DEFAULT_PROGRAMS_DIR)["retention"]


def test_salesforce_refusals(world) -> None:
    client = world[0]
    stale = int((datetime.now() - timedelta(minutes=6)).timestamp())
    assert salesforce(client, secret="wrong").status_code == 401
    assert salesforce(client, timestamp=stale).status_code == 401
    assert salesforce(client, org="00D000000000XYZAAA").status_code == 403
    assert salesforce(client, account="001000000000000AAA").status_code == 404
    signed = salesforce_callout(SF_SECRET, SF_URL, org_id=ORG, account_id=SF_ACCOUNT)
    assert client.post(SF_URL, data=signed.body).status_code == 401


def test_unconfigured_surfaces_refuse(store) -> None:
    client = create_app(Settings(database_url="sqlite://"), store).test_client()
    assert hubspot(client).status_code == 401
    assert salesforce(client).status_code == 401


def test_card_is_a_constant_number_of_queries(world, store, program_state) -> None:
    client, *_, account_id = world
    for body in ({"type": "touchpoint", "kind": "email", "note": "Sent the QBR deck"},
                 {"type": "enroll", "program": "expansion"}):  # fmt: skip
        assert salesforce(client, body).status_code == 200
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(store, "before_cursor_execute", record)
    try:
        with store.connect() as conn:
            card = build_card(conn, account_id, ("expansion",))
    finally:
        event.remove(store, "before_cursor_execute", record)
    assert len(statements) == 2, statements
    assert card["touchpoints"][0]["kind"] == "email"
    assert card["program"]["enrollment_requests"][0]["program"] == "expansion"
    assert [e["program"] for e in card["program"]["enrollments"]] == ["care", "onboarding", "kick"]
    assert card["onboarding"]["met"] == 7


# Two test programs run by the real program engine: `care` (treated) and `onboarding`, whose enrollment is put in
# the control group before its first step (the engine then holds its steps: followed, never contacted).
CARE = """
program: care
title: Care
entry: risk >= 40
holdout: 0
steps:
  - key: hello_call
    day: 0
    channel: crm_task
    text: {default: {title: "Call {name}", body: "b"}}
  - key: tips
    day: 5
    channel: email
    text: {default: {title: "Tips for {name}", body: "b"}}
"""
MET = ("welcome", "champion_named", "first_login", "users_invited", "first_value", "integration_connected",
       "three_active_users")  # fmt: skip


@pytest.fixture
def program_state(world, store) -> dict:
    """Account A0000, 40 days a customer with 7 milestones recorded and a login 2 days ago, in `care` (its first
    step sent 3 days ago), in the onboarding program's control group, out of `kick` since yesterday (and out of
    `stale` for 60 days, too long ago to show)."""
    account_id = world[-1]
    now = datetime.now().replace(microsecond=0)
    today = now.date()
    started = now - timedelta(days=3)
    onboarding_program = CARE.replace("program: care", "program: onboarding").replace("title: Care", "title: Onb")
    programs = {**program(CARE), **program(onboarding_program), **program(CARE.replace("care", "kick"))}
    with store.begin() as conn:
        ids = list(conn.execute(select(Account.id).order_by(Account.id)).scalars())
        conn.execute(Account.__table__.update().where(Account.id == account_id)
                     .values(customer_since=today - timedelta(days=40)))  # fmt: skip
        conn.execute(insert(ProgramMilestone), [
            {"account_id": account_id, "milestone": m, "met_on": today - timedelta(days=39 - i)}
            for i, m in enumerate(MET)])  # fmt: skip
        conn.execute(AccountDay.__table__.delete().where(AccountDay.account_id == account_id))
        conn.execute(insert(AccountDay).values(account_id=account_id, day=today - timedelta(days=2), logins=3))
        enroll(conn, programs, scored(ids, [50.0] + [10.0] * (len(ids) - 1)), started)
        conn.execute(ProgramEnrollment.__table__.update().where(ProgramEnrollment.program == "onboarding")
                     .values(holdout=True))  # fmt: skip
        run_tick(conn, programs, started, Limits(messages_per_week=2, task_budget_per_csm=1000))
        kick = select(ProgramEnrollment.id).where(ProgramEnrollment.program == "kick")
        exit_enrollments(conn, pd.Series(list(conn.execute(kick).scalars())), "recovered", now - timedelta(days=1))
        conn.execute(insert(ProgramEnrollment).values(
            account_id=account_id, program="stale", status="exited", requested_by="engine", source="engine",
            requested_at=now - timedelta(days=90), entered_at=now - timedelta(days=90), holdout=False,
            exit_reason="recovered", ended_at=now - timedelta(days=60)))  # fmt: skip
    return {"account_id": account_id, "started": started, "today": today, "now": now}


def test_card_shows_the_program_engine_state(world, store, program_state) -> None:
    client = world[0]
    card = valid_card(hubspot(client))
    started, today = program_state["started"], program_state["today"]
    care, onboarding_control, kick = card["program"]["enrollments"]  # treated first, control after
    assert care == {
        "program": "care", "title": "Care", "version": 0, "status": "active", "control": False,
        "entered_at": started.isoformat(),
        "step": {"key": "hello_call", "label": "Hello call", "channel": "crm_task", "channel_label": "CRM task",
                 "outcome": "sent", "at": started.isoformat()},
        "next_due_at": (started + timedelta(days=5)).isoformat(), "exit_reason": None, "ended_at": None,
    }  # fmt: skip
    # Control group: said so, and no step or due date that could read as something to do for the program.
    assert onboarding_control["control"] is True and onboarding_control["status"] == "active"
    assert onboarding_control["title"] == "Onboarding, days 0-90"  # the program file's title
    assert onboarding_control["step"] is None and onboarding_control["next_due_at"] is None
    assert (kick["status"], kick["exit_reason"], kick["step"]["key"]) == ("exited", "recovered", "hello_call")
    assert kick["next_due_at"] is None and kick["ended_at"][:10] == (today - timedelta(days=1)).isoformat()

    onboarding = card["onboarding"]
    assert {k: v for k, v in onboarding.items() if k != "milestones"} == {
        "tracked": True,
        "day": 40,
        "phase": "adoption",
        "status": "behind",
        "control": True,
        "met": 7,
        "total": 15,
    }
    states = {m["key"]: (m["state"], m["met_on"]) for m in onboarding["milestones"]}
    assert states["welcome"] == ("met", (today - timedelta(days=39)).isoformat())
    assert states["three_active_users"] == ("met", (today - timedelta(days=33)).isoformat())
    assert states["core_features_used"] == ("missed", None)  # due by day 14
    assert states["first_business_outcome"] == ("missed", None)  # due by day 30
    assert states["weekly_habit"] == ("pending", None)  # due by day 45
    assert [m["key"] for m in onboarding["milestones"]][-1] == "graduated" and len(states) == 15


def test_card_shows_an_enrollment_once_when_its_sent_step_was_covered_before(world, store, program_state) -> None:
    """A step covered (or suppressed) and later sent in one enrollment (a newer program version put it at a later
    position) has two history rows with one key: the stored event and the action. The card shows the enrollment once,
    with the latest of the two."""
    started = program_state["started"]
    with store.begin() as conn:
        care = conn.scalar(select(ProgramEnrollment.id).where(ProgramEnrollment.program == "care"))
        covered = {"enrollment_id": care, "account_id": program_state["account_id"], "program": "care",
                   "kind": "step_covered", "step": "hello_call", "channel": "crm_task",
                   "at": started - timedelta(days=1), "dedupe_key": "step:hello_call"}  # fmt: skip
        conn.execute(insert(ProgramEvent).values(**covered))
    enrollments = valid_card(hubspot(world[0]))["program"]["enrollments"]
    assert [e["program"] for e in enrollments] == ["care", "onboarding", "kick"]
    assert (enrollments[0]["step"]["key"], enrollments[0]["step"]["outcome"]) == ("hello_call", "sent")


def test_onboarding_status_follows_the_recorded_milestones(world, store, program_state) -> None:
    client, *_, account_id = world
    with store.begin() as conn:
        conn.execute(ProgramMilestone.__table__.delete().where(ProgramMilestone.milestone == "three_active_users"))
    assert valid_card(hubspot(client))["onboarding"]["status"] == "stuck"  # three milestones overdue
    with store.begin() as conn:
        conn.execute(insert(ProgramMilestone), [
            {"account_id": account_id, "milestone": m, "met_on": program_state["today"]}
            for m in ("three_active_users", "core_features_used", "first_business_outcome")])  # fmt: skip
    assert valid_card(hubspot(client))["onboarding"]["status"] == "on_track"
    with store.begin() as conn:
        conn.execute(AccountDay.__table__.delete().where(AccountDay.account_id == account_id))
    assert valid_card(hubspot(client))["onboarding"]["status"] == "stuck"  # no login recorded at all


def test_intercom_canvas_shows_programs_but_never_the_control_group(world, store, program_state, checker) -> None:  # noqa: F811
    client, kit, contact_id, conversation_id, _ = world
    answer = send(client, kit.initialize(IC_INIT, contact_id, conversation_id))
    checker.validate_object("initialize_response", answer.json)
    assert len(answer.get_data()) < MAX_CANVAS_BYTES
    components = answer.json["canvas"]["content"]["components"]
    shown = " | ".join(shown_text(components))
    started = program_state["started"].date().isoformat()
    due = (program_state["started"] + timedelta(days=5)).date().isoformat()
    items = {i["title"]: i["subtitle"] for c in components if c["type"] == "list" for i in c["items"]}
    assert items["Care"] == f"last: Hello call (CRM task, {started}) · next {due}"
    assert items["Kick"].startswith("Finished ")
    # The onboarding control group: its program, its status and its milestone list stay off the canvas.
    assert "Onboarding, days 0-90" not in shown and "control" not in shown.lower()
    assert "Day 40 · adoption · 7 of 15 milestones" in shown and "catch up" not in shown
    assert "Onboarding milestones still open" not in shown and "Core features used" not in shown
    assert not RISK_WORDS.search(shown), shown


def test_intercom_canvas_lists_overdue_milestones_outside_the_control_group(world, store, program_state) -> None:
    client, kit, contact_id, conversation_id, _ = world
    with store.begin() as conn:
        conn.execute(ProgramEnrollment.__table__.update().where(ProgramEnrollment.program == "onboarding")
                     .values(holdout=False))  # fmt: skip
    components = send(client, kit.initialize(IC_INIT, contact_id, conversation_id)).json["canvas"]["content"][
        "components"
    ]
    shown = " | ".join(shown_text(components))
    assert "Day 40 · adoption · 7 of 15 milestones · a few steps to catch up" in shown
    assert "Onboarding, days 0-90" in shown
    milestones = next(c["items"] for c in components if c["type"] == "list" and c["items"][0]["id"] == "milestone-0")
    assert [(i["title"], i["subtitle"]) for i in milestones] == [
        ("Core features used", "due by day 14"), ("First business outcome", "due by day 30"),
        ("Weekly habit", "by day 45"), ("Team usage", "by day 60")]  # fmt: skip


def test_program_titles_come_from_the_program_files() -> None:
    titles = program_titles(DEFAULT_PROGRAMS_DIR)
    assert titles["onboarding"] == "Onboarding, days 0-90"
    assert titles["onboarding_setup_stalled"] == "Onboarding: setup stalled"
