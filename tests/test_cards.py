"""The account card and its three CRM surfaces: signed requests as the vendors send them (sandbox/cards.py), refusals,
answers checked against the documented schemas, and actions that change the store and show on the next render."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import event, insert, select

from app.cards.model import build_card
from app.scoring import score_and_store
from app.settings import Settings
from app.store.load import load_accounts, load_contacts
from app.store.models import ActivityEvent, BandOverride, ExternalId, ProgramEnrollment, Score
from app.web import create_app
from connectors.intercom.canvas import MAX_CANVAS_BYTES, RISK_WORDS
from engine.health_config import load_health_config
from sandbox.cards import CanvasKit, conversation_with_company, hubspot_fetch, salesforce_callout
from sandbox.intercom.openapi import SpecViolation
from sandbox.intercom.workspace import APP_ID, Workspace
from tests.factories import accounts_frame, contacts_frame
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
    assert card["program"] == {"active_step": None, "enrollment_requests": []}
    assert card["onboarding"]["basis"] == "tenure" and card["onboarding"]["tenure_days"] > 90
    assert card["onboarding"]["phase"] == "Onboarded"


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
    assert posted.json["notice"].startswith("Band set to healthy")
    with store.connect() as conn:
        override = conn.execute(select(BandOverride)).one()
    assert (override.account_id, override.reason, override.source) == (account_id, "Exec sponsor re-engaged", "hubspot")
    card = valid_card(hubspot(client))
    assert card["health"]["override"]["author"] == "csm@example.com"
    assert card["health"]["band"] == "healthy" and card["health"]["computed_band"] != "healthy"


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

    inputs = {"note": "Agreed a rollout plan", "band": "healthy"}
    spec.validate_object("submit_request", kit.submit_body(contact_id, conversation_id, canvas, "snooze:", inputs))
    held = send(client, kit.submit(IC_SUBMIT, contact_id, conversation_id, canvas, "snooze:", inputs))
    spec.validate_object("submit_response", held.json)
    texts = [c.get("text", "") for c in held.json["canvas"]["content"]["components"]]
    assert any(t.startswith("Held at On track by admin@cse-sandbox.example") for t in texts)
    with store.connect() as conn:
        assert conn.execute(select(BandOverride.band, BandOverride.source)).one() == ("healthy", "intercom")

    logged = send(client, kit.submit(IC_SUBMIT, contact_id, conversation_id, held.json["canvas"], "log:call",
                                     {"note": "Walked through exports"}))  # fmt: skip
    spec.validate_object("submit_response", logged.json)
    with store.connect() as conn:
        touch = conn.execute(select(ActivityEvent).where(ActivityEvent.source == "card")).one()
    assert (touch.kind, touch.properties["note"]) == ("meeting", "Walked through exports")
    assert valid_card(hubspot(client))["touchpoints"][0]["note"] == "Walked through exports"


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
            risk_drivers=[{"label": "Competitor mentions", "relation": "higher", "points": 12}]))  # fmt: skip
        conn.execute(insert(BandOverride).values(account_id=account_id, band="critical", reason="churn risk flagged",
                                                 author="csm", source="web", created_at=datetime.now(),
                                                 expires_at=datetime.now() + timedelta(days=3)))  # fmt: skip
    internal = valid_card(hubspot(client))
    assert RISK_WORDS.search(json.dumps(internal))  # the CRM card does say it …
    canvas = send(client, kit.initialize(IC_INIT, contact_id, conversation_id)).json
    shown = " | ".join(shown_text(canvas["canvas"]["content"]["components"]))
    assert not RISK_WORDS.search(shown), shown  # … the inbox canvas does not
    assert "19 %" in shown  # renewal outlook = 1 - churn probability


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
    assert enrolled.json["notice"] == "Enrollment in retention requested"
    again = salesforce(client, {"type": "enroll", "program": "retention"})
    assert again.json["notice"] == "Enrollment in retention is already requested"
    with store.connect() as conn:
        request = conn.execute(select(ProgramEnrollment)).one()
    assert (request.program, request.status, request.source) == ("retention", "requested", "salesforce")
    shown = valid_card(salesforce(client))["program"]
    assert shown["active_step"] is None and shown["enrollment_requests"][0]["program"] == "retention"


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


def test_card_is_a_constant_number_of_queries(world, store) -> None:
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
