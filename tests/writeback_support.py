"""Fixtures shared by the write-back tests: a store holding a book, linked by a sync to a vendor sandbox seeded
from the same book (Salesforce `linked`, HubSpot `hubspot_linked`, Intercom `intercom_linked`)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.programs.definitions import active_programs
from app.programs.tick import Limits, run_tick
from app.rescoring import RescoreResult, rescore
from app.settings import Settings
from app.sync import run_sync
from connectors.hubspot.source import HubSpotSource
from connectors.intercom.source import IntercomSource
from connectors.salesforce.source import SalesforceSource
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.intercom import start_sandbox as start_intercom
from sandbox.salesforce import start_sandbox as start_salesforce

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def book():
    return generate_book(BookSpec(seed=3, active_accounts=150, days=60, as_of=AS_OF))


def _linked_settings(store, book, tmp_path, monkeypatch, vendor_env: dict, source_class) -> Settings:
    """Load the book, point the settings at the sandbox (in the environment, as jobs read it) and sync it."""
    load_book(store, book.accounts, book.contacts, book.events)
    env = {**vendor_env, "DATABASE_URL": store.url.render_as_string(hide_password=False), "CSE_DATA_DIR": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings.from_env()
    run_sync(store, [source_class.from_settings(settings)], log_dir=tmp_path)
    return settings


@pytest.fixture
def linked(store, book, tmp_path, monkeypatch):
    with start_salesforce(book) as sandbox:
        yield store, sandbox, _linked_settings(store, book, tmp_path, monkeypatch, sandbox.settings_env(),
                                               SalesforceSource)  # fmt: skip


@pytest.fixture
def hubspot_linked(store, book, tmp_path, monkeypatch):
    with start_hubspot(book) as sandbox:
        env = sandbox.settings_env()
        yield store, sandbox.state, _linked_settings(store, book, tmp_path, monkeypatch, env, HubSpotSource)


@pytest.fixture
def intercom_linked(store, book, tmp_path, monkeypatch):
    with start_intercom(book) as sandbox:
        env = sandbox.settings_env()
        yield store, sandbox.state, _linked_settings(store, book, tmp_path, monkeypatch, env, IntercomSource)


NOW = datetime(2026, 6, 30, 23, 0)


def rescore_book(store) -> RescoreResult:
    """Score the book for AS_OF with write-back, enrolling accounts in the shipped programs, then run the program
    tick at NOW: the field writes, CSM tasks and messages the write-back tests deliver."""
    programs = active_programs(None, DEFAULT_PROGRAMS_DIR)
    result = rescore(store, AS_OF, load_health_config(), score_step=2.0, now=NOW, programs=programs)
    with store.begin() as conn:
        run_tick(conn, programs, NOW, Limits(messages_per_week=2, task_budget_per_csm=25))
    return result
