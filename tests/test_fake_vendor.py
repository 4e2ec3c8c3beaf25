"""A new vendor is one folder: Acme (tests/fake_vendor/, its own sandbox included) joins through the connector
registry and goes through pull, scoring and write-back with nothing in app/ or engine/ naming it."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from app.book_loader import load_book
from app.settings import Settings
from app.sources import build_sources
from app.store.models import ExternalId, OutboxRow, Score
from app.sync import run_sync
from app.sync.versions import active_mapping, mappings_dir_of
from app.writeback.jobs import enqueue_deliveries, pusher_for
from connectors.registry import all_connectors, connector, register, unregister
from tests.fake_vendor import CONNECTOR, MAPPINGS, VENDOR
from tests.writeback_support import AS_OF, book, rescore_book  # noqa: F401 - `book` is a fixture


@pytest.fixture
def acme(store, book, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    """The store holding the book, Acme registered and serving the book's companies, the environment pointing the
    app at it (with Acme's default mappings in a CSE_MAPPINGS_DIR) and at no other vendor."""
    load_book(store, book.accounts, book.contacts, book.events)
    shutil.copytree(MAPPINGS, tmp_path / "mappings" / VENDOR)
    register(CONNECTOR)
    try:
        with connector(VENDOR).start_sandbox(book) as sandbox:
            for record in all_connectors():
                for credential in record.credentials:
                    monkeypatch.delenv(credential.upper(), raising=False)
            env = {
                **sandbox.settings_env(), "DATABASE_URL": store.url.render_as_string(hide_password=False),
                "CSE_DATA_DIR": str(tmp_path), "CSE_MAPPINGS_DIR": str(tmp_path / "mappings"),
            }  # fmt: skip
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            monkeypatch.delenv("REDIS_URL", raising=False)  # delivery jobs run inline
            yield store, sandbox.state, Settings.from_env()
    finally:
        unregister(VENDOR)
        pusher_for.cache_clear()


def _outbox(store) -> dict[tuple[str, str], int]:
    with store.connect() as conn:
        query = (
            select(OutboxRow.operation, OutboxRow.status, func.count())
            .where(OutboxRow.vendor == VENDOR)
            .group_by(OutboxRow.operation, OutboxRow.status)
        )
        return {(operation, status): n for operation, status, n in conn.execute(query)}


def test_a_fourth_vendor_is_pulled_scored_and_written_back_through_the_registry(acme):
    store, state, settings = acme
    sources = build_sources(settings, engine=store)  # every configured vendor: Acme alone
    assert [source.vendor for source in sources] == [VENDOR]
    log = run_sync(store, sources, mappings_dir=mappings_dir_of(settings), log_dir=settings.data_dir / "sync-logs")
    assert log.errors == []
    assert log.api_calls[VENDOR] >= len(state.companies) / 25, "paged through the sandbox's companies"
    with store.connect() as conn:
        links = dict(conn.execute(select(ExternalId.account_id, ExternalId.external_id).where(
            ExternalId.vendor == VENDOR, ExternalId.object == "companies")).all())  # fmt: skip
        push_mapping = active_mapping(conn, VENDOR, CONNECTOR.push_mapping, mappings_dir_of(settings))
    assert sorted(links.values()) == sorted(state.companies), "every Acme company linked to its account by key"

    client = pusher_for(settings, VENDOR).client
    fields = connector(VENDOR).fields_module()
    assert fields.install_fields(client, push_mapping) and fields.missing_fields(client, push_mapping) == {}

    result = rescore_book(store)
    with store.connect() as conn:
        scores = {a: (h, b) for a, h, b in conn.execute(select(Score.account_id, Score.health, Score.band).where(
            Score.as_of == AS_OF, Score.account_id.in_(list(links))))}  # fmt: skip
    assert scores and result.field_writes == len(scores), "a field write per scored Acme company"
    enqueue_deliveries(settings, store)  # every registered vendor's queue; only Acme has rows
    outbox = _outbox(store)
    assert outbox[("update_fields", "done")] == len(scores)
    assert {status for _, status in outbox} == {"done"}
    assert len(state.tasks) == outbox.get(("create_task", "done"), 0) > 0

    for account_id, (health, band) in scores.items():
        company = state.companies[links[account_id]]
        assert (company["cse_health"], company["cse_band"]) == (round(health, 1), band)
        assert company["cse_scored_on"] == AS_OF.isoformat()
