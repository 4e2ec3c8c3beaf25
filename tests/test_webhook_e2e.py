"""End to end: a usage drop in the Intercom sandbox → its signed webhook → our web app → Redis → a real worker →
fresh pull, rescoring and write-back → the new health in the HubSpot and Salesforce sandboxes, with a CSM task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from types import SimpleNamespace

from sqlalchemy import func, select

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.rescoring import rescore
from app.settings import Settings
from app.sources import build_sources
from app.store.models import Account, OutboxRow, WebhookEvent
from app.sync import active_mapping, run_sync
from app.web import create_app
from app.writeback.jobs import enqueue_deliveries, pusher_for
from connectors.hubspot.fields import install_fields as install_hubspot
from connectors.intercom.fields import install_fields as install_intercom
from engine.health_config import load_health_config
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.intercom import start_sandbox as start_intercom
from sandbox.intercom.values import APP_ID
from sandbox.intercom.webhooks import Subscription, WebhookSender
from sandbox.redis_server import throwaway_redis
from sandbox.salesforce import start_sandbox as start_salesforce
from sandbox.server import start_server
from tests.conftest import service_missing

INTERCOM_SECRET = "intercom-app-secret"


def _wait(condition, seconds: float, what: str, log=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{tail}")
        time.sleep(0.1)


def _target(book):
    """An active account with a champion: the one whose usage will drop."""
    active = set(book.accounts.loc[book.accounts["status"] == "active", "key"])
    champions = book.contacts[book.contacts["is_champion"] & book.contacts["account_key"].isin(active)]
    row = champions.iloc[0]
    return row["account_key"], row["email"]


def _in_crm(book, key: str, crm: str):
    accounts = book.accounts.copy()
    accounts.loc[accounts["key"] == key, "crm"] = crm  # the company lives in both CRMs, as in a real stack
    return SimpleNamespace(accounts=accounts, contacts=book.contacts, events=book.events)


def test_usage_drop_webhook_lands_new_health_in_both_crms(store, tmp_path, monkeypatch):
    today = date.today()
    # A small book: one account's path is what is proven, and the first sync of the three sandboxes grows with it.
    book = generate_book(BookSpec(seed=5, active_accounts=20, days=60, as_of=today))
    key, champion_email = _target(book)
    load_book(store, book.accounts, book.contacts, book.events)
    try:
        redis_context = throwaway_redis()
        redis_url = redis_context.__enter__()
    except FileNotFoundError as error:
        service_missing("redis-server (for a throwaway instance)", error)
    sf = start_salesforce(_in_crm(book, key, "salesforce"))
    hubspot_sandbox = start_hubspot(_in_crm(book, key, "hubspot"))
    hubspot = hubspot_sandbox.state
    intercom = start_intercom(book)
    web = worker = None
    try:
        env = {
            **sf.settings_env(), **hubspot_sandbox.settings_env(), **intercom.settings_env(),
            "INTERCOM_CLIENT_SECRET": INTERCOM_SECRET, "INTERCOM_APP_ID": APP_ID, "REDIS_URL": redis_url,
            "DATABASE_URL": store.url.render_as_string(hide_password=False), "CSE_DATA_DIR": str(tmp_path),
        }  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_env()
        run_sync(store, build_sources(settings, None, store), log_dir=tmp_path)
        with store.connect() as conn:
            for vendor, install in (("hubspot", install_hubspot), ("intercom", install_intercom)):
                install(pusher_for(settings, vendor).client, active_mapping(conn, vendor, "push_companies"))
            account_id = conn.scalar(select(Account.id).where(Account.key == key))
        rescore(store, today, load_health_config(), settings.writeback_score_step)

        log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed with the worker below
        command = [sys.executable, "-m", "app", "worker"]
        worker = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True, stdout=log, stderr=log)
        import redis

        enqueue_deliveries(settings, store, connection=redis.Redis.from_url(redis_url))

        def outbox_idle() -> bool:
            with store.connect() as conn:
                busy = OutboxRow.status.in_(("pending", "enqueued", "sending"))
                return not conn.scalar(select(func.count()).select_from(OutboxRow).where(busy))

        _wait(outbox_idle, 90, "the baseline write-back", tmp_path / "worker.log")
        sf_id = next(
            r["Id"] for r in sf.org.live("Account") if r["Name"] == book.accounts.set_index("key").at[key, "name"]
        )
        company = next(
            c for c in hubspot.live("companies") if c.properties.get("name") == sf.org.get("Account", sf_id)["Name"]
        )
        sf_before = sf.org.get("Account", sf_id)["CSE_Health_Score__c"]
        hubspot_before = float(hubspot.get("companies", company.id).properties["cse_health_score"])
        assert sf_before == hubspot_before

        web = start_server(create_app(settings, store))
        sender = WebhookSender(intercom.workspace, [Subscription(f"{web.base_url}/webhooks/intercom", INTERCOM_SECRET)])
        contact_id = intercom.workspace.find_contact(email=champion_email)["id"]
        assert sender.usage_drop(contact_id) == [204]

        def landed() -> bool:
            sf_now = sf.org.get("Account", sf_id)["CSE_Health_Score__c"]
            hubspot_now = hubspot.get("companies", company.id).properties.get("cse_health_score")
            return sf_now != sf_before and hubspot_now is not None and float(hubspot_now) != hubspot_before

        _wait(landed, 60, "the new health in both CRMs", tmp_path / "worker.log")
        sf_after = sf.org.get("Account", sf_id)["CSE_Health_Score__c"]
        assert sf_after < sf_before
        assert float(hubspot.get("companies", company.id).properties["cse_health_score"]) == sf_after
        with store.connect() as conn:
            event = conn.execute(select(WebhookEvent.__table__).where(WebhookEvent.vendor == "intercom")).one()
        assert event.status == "processed" and account_id in event.account_ids
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait()
        if web is not None:
            web.stop()
        sf.stop()
        hubspot_sandbox.stop()
        intercom.stop()
        redis_context.__exit__(None, None, None)
