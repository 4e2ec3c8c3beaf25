"""load_book (the demo's and the benches' loader) stores what one plain load of the book in its own order stores.

It writes each chunk's events account by account (app.book_loader._stored_order); only the events' surrogate ids
may differ from loading them as the book lists them.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Engine, select

from app import book_loader
from app.book_loader import load_book
from app.demo import BookSpec, generate_book
from app.store.db import make_engine, upgrade_schema
from app.store.load import load_accounts, load_contacts, load_events
from app.store.models import Account, AccountDay, ActivityEvent, Contact, Feature


def _contents(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every table the load writes, as sorted frames (events without their surrogate id, keyed by external id)."""
    keys = {Account: ["id"], Contact: ["id"], Feature: ["key"], AccountDay: ["account_id", "day"],
            ActivityEvent: ["source", "external_id"]}  # fmt: skip
    with engine.connect() as conn:
        frames = {}
        for model, order in keys.items():
            columns = [c for c in model.__table__.columns if not (model is ActivityEvent and c.name == "id")]
            columns = [c for c in columns if c.name != "updated_at"]  # the load's clock
            rows = conn.execute(select(*columns)).all()
            frame = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in columns])
            frames[model.__tablename__] = frame.sort_values(order).reset_index(drop=True)
    return frames


def test_load_book_stores_what_a_plain_load_stores(store: Engine, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(book_loader, "CHUNK_ACCOUNTS", 25)  # several chunks
    book = generate_book(BookSpec(seed=5, active_accounts=60, days=120, as_of=date(2026, 6, 30)))

    plain = make_engine(f"sqlite:///{tmp_path}/plain.db")
    upgrade_schema(plain)
    with plain.begin() as conn:
        account_ids = load_accounts(conn, book.accounts)
        contact_ids = load_contacts(conn, book.contacts, account_ids)
        load_events(conn, book.events, account_ids, contact_ids)
    assert load_book(store, book.accounts, book.contacts, book.events) == len(book.events)

    expected, got = _contents(plain), _contents(store)
    assert len(got["activity_events"]) == len(book.events) and len(got["account_days"]) > 0
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(got[table], frame, check_dtype=False, obj=table)
