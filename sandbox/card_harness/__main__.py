"""Build the store, call the endpoints with signed requests, render the pages, optionally capture them."""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import insert

from app.scoring import score_and_store
from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.store.load import load_accounts, load_contacts
from app.store.models import AccountDay, Action, ExternalId, ProgramEnrollment, ProgramEvent, ProgramMilestone, Score
from app.web import create_app
from engine.health_config import load_health_config
from sandbox.cards import CanvasKit, conversation_with_company, hubspot_fetch, salesforce_callout
from sandbox.intercom.workspace import APP_ID, Workspace

HS, IC, SF = "harness-hubspot-secret", "harness-intercom-secret", "harness-salesforce-secret"
PORTAL, ORG, COMPANY, SF_ACCOUNT = 62515, "00D5e000000AbCdEAB", "1001", "0015e00000ABCDEAAA"
TEMPLATES = Path(__file__).with_name("templates")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1100,1400")  # fmt: skip


def _store(folder: Path, ic_company: str):
    engine = make_engine(f"sqlite:///{folder / 'harness.db'}")
    upgrade_schema(engine)
    today = date.today()
    account = pd.DataFrame([{
        "key": "NW-001", "name": "Northwind Traders", "domain": "northwind.example", "segment": "mid",
        "plan": "business", "arr": 48000.0, "seats_purchased": 60, "seats_active": 21, "customer_since":
        today - timedelta(days=ONBOARDING_DAY), "renewal_date": today + timedelta(days=325),
        "owner": "dana@vendor.example", "lifecycle_stage": "onboarding", "status": "active", "roi_pct": 40.0,
        "goal_attainment": 0.35, "first_value_at": today - timedelta(days=33),
    }])  # fmt: skip
    champion = {"account_key": "NW-001", "email": "pat@northwind.example", "name": "Pat Lee", "role": "admin",
                "is_champion": True, "is_exec_sponsor": False, "last_seen": None}  # fmt: skip
    contacts = pd.DataFrame([champion])
    with engine.begin() as conn:
        ids = load_accounts(conn, account)
        load_contacts(conn, contacts, ids)
        account_id = ids["NW-001"]
        conn.execute(insert(ExternalId), [
            {"account_id": account_id, "vendor": v, "object": o, "external_id": x}
            for v, o, x in (("hubspot", "companies", COMPANY), ("salesforce", "Account", SF_ACCOUNT),
                            ("intercom", "companies", ic_company))])  # fmt: skip
        for back in (30, 7, 0):
            score_and_store(conn, today - timedelta(days=back), load_health_config())
        # As a trained churn model scores it: one risk scale (risk = probability x 100, source model), 30 days.
        conn.execute(Score.__table__.update().where(Score.account_id == account_id).values(
            churn_probability=0.34, churn_horizon_days=30, risk=34.0, risk_source="model", days_to_churn=160,
            early_warning=True, warning_horizon_days=90, model_version="churn-store-harness",
            risk_drivers=[{"label": "Weekly active users", "relation": "lower", "points": 9}]))  # fmt: skip
        conn.execute(insert(Action).values(
            account_id=account_id, playbook="onboarding", step="training", kind="crm_task", status="released",
            due=datetime.now() + timedelta(days=1), dedupe_key="harness:1", created_at=datetime.now(),
            payload={"title": "Offer a training session (no feature use for 7 days)"}))  # fmt: skip
        _programs(conn, account_id, today)
    return engine


ONBOARDING_DAY = 40  # the account is 40 days into onboarding
MET = {"welcome": 0, "champion_named": 1, "first_login": 0, "users_invited": 2, "first_value": 7,
       "integration_connected": 9, "three_active_users": 12}  # milestone: day met  # fmt: skip


def _programs(conn, account_id: int, today: date) -> None:
    """The program engine's state as a tick leaves it: onboarding under way (last step the day-30 review), the
    quarterly NPS survey with the account in its control group, the setup-stalled touchpoint ended (recovered)."""
    start = datetime.combine(today - timedelta(days=ONBOARDING_DAY), datetime.min.time()).replace(hour=6)
    conn.execute(insert(ProgramMilestone), [{"account_id": account_id, "milestone": m, "met_on": start.date()
                                             + timedelta(days=d)} for m, d in MET.items()])  # fmt: skip
    conn.execute(insert(AccountDay).values(account_id=account_id, day=today - timedelta(days=1), logins=4))
    rows = [("onboarding", 0, "active", False, start, None, None, start + timedelta(days=60)),
            ("nps_quarterly", 2, "active", True, start + timedelta(days=16), None, None, start + timedelta(days=46)),
            ("onboarding_setup_stalled", 0, "exited", False, start + timedelta(days=9), "recovered",
             start + timedelta(days=26), None)]  # fmt: skip
    steps = {"onboarding": ("first_outcome_review", "crm_task", "step_sent", 30),
             "nps_quarterly": ("survey", "inapp_message", "step_held", 16),
             "onboarding_setup_stalled": ("support_escalation", "crm_task", "step_sent", 9)}  # fmt: skip
    for program, version, status, holdout, entered, reason, ended, due in rows:
        enrollment_id = conn.execute(insert(ProgramEnrollment).values(
            account_id=account_id, program=program, status=status, requested_by="program engine", source="engine",
            requested_at=entered, version=version, tier=0, step=1, holdout=holdout, entered_at=entered,
            tier_entered_at=entered, next_due_at=due, exit_reason=reason, ended_at=ended,
        )).inserted_primary_key[0]  # fmt: skip
        key, channel, kind, day = steps[program]
        conn.execute(insert(ProgramEvent).values(
            enrollment_id=enrollment_id, account_id=account_id, program=program, kind=kind, step=key,
            channel=channel, at=start + timedelta(days=day), dedupe_key=f"step:{key}"))  # fmt: skip


def _send(client, signed) -> dict:
    response = client.open(signed.url, method=signed.method, headers=signed.headers, data=signed.body)
    if response.status_code != 200:
        raise SystemExit(f"{signed.url} answered {response.status_code}: {response.get_data(as_text=True)}")
    return response.json


def answers(folder: Path) -> dict[str, dict]:
    """The three surfaces' answers after one action from each."""
    ws = Workspace()
    contact_id, conversation_id, ic_company = conversation_with_company(
        ws, "NW-001", "Northwind Traders", "pat@northwind.example", "Pat Lee", "Can we get a walkthrough of exports?"
    )
    engine = _store(folder, ic_company)
    settings = Settings(database_url="sqlite://", hubspot_client_secret=HS, hubspot_portal_id=str(PORTAL),
                        intercom_client_secret=IC, intercom_app_id=APP_ID, salesforce_callout_secret=SF,
                        salesforce_org_id=ORG)  # fmt: skip
    client = create_app(settings, engine).test_client()
    hs_url, sf_url = "http://localhost/cards/hubspot", "http://localhost/cards/salesforce"
    kit = CanvasKit(ws, IC)
    initialized = _send(client, kit.initialize("http://localhost/cards/intercom/initialize", contact_id,
                                               conversation_id))  # fmt: skip
    _send(client, kit.submit("http://localhost/cards/intercom/submit", contact_id, conversation_id,
                             initialized["canvas"], "log:call", {"note": "Walked Pat through exports"}))  # fmt: skip
    action = {"type": "override", "band": "at_risk", "reason": "New exec sponsor engaged; rollout plan agreed",
              "days": 14}  # fmt: skip
    hubspot = _send(client, hubspot_fetch(HS, hs_url, portal_id=PORTAL, method="POST",
                                          body={"companyId": COMPANY, "action": action}))  # fmt: skip
    salesforce = _send(client, salesforce_callout(SF, sf_url, org_id=ORG, account_id=SF_ACCOUNT,
                                                  action={"type": "enroll", "program": "retention"}))  # fmt: skip
    intercom = _send(client, kit.initialize("http://localhost/cards/intercom/initialize", contact_id,
                                            conversation_id))  # fmt: skip
    engine.dispose()
    return {"hubspot": hubspot, "intercom": intercom, "salesforce": salesforce}


def render(pages: dict[str, dict], out: Path) -> dict[str, Path]:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for surface, payload in pages.items():
        path = out / f"{surface}-card.html"
        path.write_text(env.get_template(f"{surface}.html").render(payload=payload, raw=json.dumps(payload, indent=1)))
        written[surface] = path
    return written


def shoot(pages: dict[str, Path], folder: Path) -> None:
    """Capture each page in headless Chromium (Debian's chromium + chromium-driver, selenium from PyPI)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for surface, page in pages.items():
            driver.get(page.resolve().as_uri())
            card = driver.find_element("css selector", ".surface")
            card.screenshot(str(folder / f"{surface}-card.png"))
            print(f"  {folder / f'{surface}-card.png'}")
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="folder for the HTML pages (default: a temporary one)")
    parser.add_argument("--shoot", type=Path, help="capture PNG screenshots into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        pages = render(answers(Path(scratch)), args.out or Path(scratch) / "pages")
        for page in pages.values():
            print(f"  {page}")
        if args.shoot:
            shoot(pages, args.shoot)


if __name__ == "__main__":
    main()
