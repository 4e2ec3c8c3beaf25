"""load_book (the demo's and the benches' loader) gives the store what loading every event one by one gives it.

It keeps the book's product usage as daily sums (usage_days, app.store.load.daily_usage) and writes each chunk's
other events account by account (app.book_loader._stored_order). What scoring, the models and the programs read
must not change: the daily rollups, the first-value and first-activity dates, the contacts, the feature bits, and
the events still read one by one (CRM activity, surveys, milestones, churn signals).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from app import book_loader
from app.book_loader import load_book
from app.demo import BookSpec, generate_book
from app.store.db import make_engine, upgrade_schema
from app.store.load import BOOK_SOURCE, USAGE_KINDS, load_accounts, load_contacts, load_events, lookup
from app.store.models import Account, AccountDay, ActivityEvent, Contact, Feature, UsageDay

KEYS = {Account: ["id"], Contact: ["id"], Feature: ["key"], AccountDay: ["account_id", "day"],
        ActivityEvent: ["source", "external_id"]}  # fmt: skip


def _contents(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every table the load writes, as sorted frames (events without their surrogate id, keyed by external id)."""
    with engine.connect() as conn:
        frames = {}
        for model, order in KEYS.items():
            columns = [c for c in model.__table__.columns if not (model is ActivityEvent and c.name == "id")]
            columns = [c for c in columns if c.name != "updated_at"]  # the load's clock
            rows = conn.execute(select(*columns)).all()
            frame = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in columns])
            frames[model.__tablename__] = frame.sort_values(order).reset_index(drop=True)
    return frames


@pytest.fixture(scope="module")
def book():
    return generate_book(BookSpec(seed=5, active_accounts=60, days=120, as_of=date(2026, 6, 30)))


@pytest.fixture(scope="module")
def one_by_one(book, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The store after loading every event of the book as an event row (no daily sums), in the book's order."""
    plain = make_engine(f"sqlite:///{tmp_path_factory.mktemp('plain')}/plain.db")
    upgrade_schema(plain)
    with plain.begin() as conn:
        account_ids = load_accounts(conn, book.accounts)
        contact_ids = load_contacts(conn, book.contacts, account_ids)
        load_events(conn, book.events, account_ids, contact_ids)
    contents = _contents(plain)
    plain.dispose()
    return contents


def test_load_book_gives_the_rollups_dates_and_events_of_a_load_event_by_event(
    store: Engine, book, one_by_one, monkeypatch
) -> None:
    monkeypatch.setattr(book_loader, "CHUNK_ACCOUNTS", 25)  # several chunks
    usage = book.events["kind"].isin(list(USAGE_KINDS))
    assert usage.mean() > 0.8  # the book is mostly product usage: what the daily sums replace

    assert load_book(store, book.accounts, book.contacts, book.events) == int((~usage).sum())

    got = _contents(store)
    expected = dict(one_by_one)
    kept = ~expected["activity_events"]["kind"].isin(list(USAGE_KINDS))
    expected["activity_events"] = expected["activity_events"][kept].reset_index(drop=True)
    assert len(got["account_days"]) > 0 and got["accounts"]["first_value_at"].notna().any()
    assert got["accounts"]["first_activity_at"].notna().any()
    for table, frame in expected.items():  # rollups (session minutes: float sums), first value/activity, events
        pd.testing.assert_frame_equal(got[table], frame, check_dtype=False, obj=table)


def test_the_daily_sums_hold_every_usage_event_once_and_a_reload_changes_nothing(store: Engine, book) -> None:
    load_book(store, book.accounts, book.contacts, book.events)
    first = _contents(store)
    load_book(store, book.accounts, book.contacts, book.events)
    for table, frame in _contents(store).items():
        pd.testing.assert_frame_equal(frame, first[table], check_dtype=False, obj=table)

    events = book.events
    logins = events[events["kind"] == "login"]
    with store.connect() as conn:
        u = UsageDay
        totals = conn.execute(
            select(func.count(), func.sum(u.logins), func.sum(u.session_minutes), func.sum(u.feature_uses),
                   func.sum(u.api_calls), func.sum(u.self_service), func.sum(u.active_users))
            .where(u.source == BOOK_SOURCE)
        ).one()  # fmt: skip
    account_days = events[events["kind"].isin(list(USAGE_KINDS))]
    day_keys = account_days["account_key"] + account_days["occurred_at"].dt.strftime("%Y-%m-%d")
    contact_days = logins["contact_email"] + logins["account_key"] + logins["occurred_at"].dt.strftime("%Y-%m-%d")
    assert totals[0] == day_keys.nunique()  # one row per account and day with usage
    assert totals[1] == logins["count"].sum()
    assert totals[2] == pytest.approx(logins["value"].sum())
    for kind, total in zip(("feature_used", "api_call", "self_service"), totals[3:6], strict=True):
        assert total == events.loc[events["kind"] == kind, "count"].sum()
    assert totals[6] == contact_days.nunique()  # distinct contacts who logged in, per account and day


def test_lookup_gives_ids_and_nan_for_unknown_or_missing_keys() -> None:
    keys = pd.Series(["a", None, "c", "zz", "b"], dtype="string")

    assert lookup(keys, {"a": 1, "b": 2, "c": 3}).tolist()[::2] == [1.0, 3.0, 2.0]
    assert lookup(keys, {"a": 1, "b": 2, "c": 3}).isna().tolist() == [False, True, False, True, False]
    assert lookup(keys, {}).isna().all()
