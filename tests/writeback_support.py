"""Fixtures shared by the write-back tests: a store holding a book, linked by a sync to a Salesforce sandbox."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.rescoring import RescoreResult, rescore
from app.settings import Settings
from app.sync import run_sync
from connectors.salesforce.source import SalesforceSource
from engine.health_config import load_health_config
from engine.playbooks import load_playbooks
from sandbox.salesforce import start_sandbox

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def book():
    return generate_book(BookSpec(seed=3, active_accounts=150, days=60, as_of=AS_OF))


@pytest.fixture
def linked(store, book, tmp_path, monkeypatch):
    """Store loaded with the book and synced with a Salesforce org seeded from the same book."""
    load_book(store, book.accounts, book.contacts, book.events)
    with start_sandbox(book) as sandbox:
        env = {**sandbox.settings_env(), "DATABASE_URL": store.url.render_as_string(hide_password=False),
               "CSE_DATA_DIR": str(tmp_path)}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("REDIS_URL", raising=False)
        settings = Settings.from_env()
        run_sync(store, [SalesforceSource.from_settings(settings)], log_dir=tmp_path)
        yield store, sandbox, settings


def rescore_book(store) -> RescoreResult:
    return rescore(store, AS_OF, load_health_config(), load_playbooks(), score_step=2.0,
                   now=datetime(2026, 6, 30, 23, 0))  # fmt: skip


@pytest.fixture
def hubspot_linked(store, book, tmp_path, monkeypatch):
    """Store loaded with the book and synced with a HubSpot portal seeded from the same book."""
    from connectors.hubspot.source import HubSpotSource
    from sandbox.hubspot import start_sandbox as start_hubspot

    load_book(store, book.accounts, book.contacts, book.events)
    running, state = start_hubspot(book)
    try:
        env = {
            "HUBSPOT_ACCESS_TOKEN": "sandbox-token",
            "HUBSPOT_BASE_URL": running.base_url,
            "DATABASE_URL": store.url.render_as_string(hide_password=False),
            "CSE_DATA_DIR": str(tmp_path),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("REDIS_URL", raising=False)
        settings = Settings.from_env()
        run_sync(store, [HubSpotSource.from_settings(settings)], log_dir=tmp_path)
        yield store, state, settings
    finally:
        running.stop()


@pytest.fixture
def intercom_linked(store, book, tmp_path, monkeypatch):
    """Store loaded with the book and synced with an Intercom workspace seeded from the same book."""
    from connectors.intercom.source import IntercomSource
    from sandbox.intercom import DEFAULT_TOKEN, start_intercom_sandbox

    load_book(store, book.accounts, book.contacts, book.events)
    running, state = start_intercom_sandbox(book)
    try:
        env = {
            "INTERCOM_ACCESS_TOKEN": DEFAULT_TOKEN,
            "INTERCOM_BASE_URL": running.base_url,
            "DATABASE_URL": store.url.render_as_string(hide_password=False),
            "CSE_DATA_DIR": str(tmp_path),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("REDIS_URL", raising=False)
        settings = Settings.from_env()
        run_sync(store, [IntercomSource.from_settings(settings)], log_dir=tmp_path)
        yield store, state, settings
    finally:
        running.stop()
