"""Scoring another day than today, or a dry run, stores and reports scores but plans nothing for the CRMs.

A past day would overwrite today's scores in the CRMs and queue tasks for a situation that has moved on; a future
day would message customers about a day that has not come. The store is linked to a Salesforce sandbox, so a run
for today does plan field writes and tasks (the control at the end shows the setup would catch a leak).
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from app.book_loader import load_book
from app.cli import cli
from app.demo.book import BookSpec, generate_book
from app.settings import Settings
from app.store.models import Action, OutboxRow, Score
from app.sync import run_sync
from app.writeback.jobs import enqueue_deliveries
from connectors.salesforce.source import SalesforceSource
from sandbox.salesforce import start_sandbox

TODAY = date.today()


@pytest.fixture(scope="module")
def todays_book():
    return generate_book(BookSpec(seed=11, active_accounts=120, days=60, as_of=TODAY))


@pytest.fixture
def linked_today(store, todays_book, tmp_path, monkeypatch):
    """The book in the store and in a Salesforce sandbox, linked by a sync, with settings in the environment."""
    with start_sandbox(todays_book) as sandbox:
        load_book(store, todays_book.accounts, todays_book.contacts, todays_book.events)
        env = {**sandbox.settings_env(), "DATABASE_URL": store.url.render_as_string(hide_password=False),
               "CSE_DATA_DIR": str(tmp_path)}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("REDIS_URL", raising=False)
        run_sync(store, [SalesforceSource.from_settings(Settings.from_env())], log_dir=tmp_path)
        yield store, sandbox


def _planned(store) -> tuple[int, int]:
    with store.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OutboxRow)), conn.scalar(
            select(func.count()).select_from(Action)
        )


def _score(*args: str) -> tuple[dict, str]:
    result = CliRunner().invoke(cli, ["score", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--as-of", (TODAY - timedelta(days=20)).isoformat()], "is not today"),
        (["--as-of", (TODAY + timedelta(days=30)).isoformat()], "is not today"),
        (["--dry-run"], "a dry run"),
    ],
    ids=["past", "future", "dry-run"],
)
def test_other_days_and_dry_runs_store_scores_but_plan_no_writeback(linked_today, args, reason) -> None:
    store, _ = linked_today
    summary, stderr = _score(*args)
    assert summary["accounts"] > 100
    assert summary["writeback"] == {"field_writes": 0, "new_actions": 0, "planned": False,
                                    "skipped": summary["writeback"]["skipped"]}  # fmt: skip
    assert reason in summary["writeback"]["skipped"] and "no CRM write or customer contact" in stderr
    assert _planned(store) == (0, 0), "no outbox row and no action for a backfill, a forecast or a dry run"
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Score)) >= summary["accounts"], "the scores are stored"

    # The control: today's real run plans field writes and tasks on the same store.
    today, _ = _score()
    assert today["writeback"]["planned"] and today["writeback"]["field_writes"] > 20
    assert _planned(store)[0] > 20


def test_writeback_refuses_field_rows_older_than_the_latest_score(linked_today) -> None:
    """A field write planned for an older day than the account's latest score is superseded, never delivered."""
    store, _ = linked_today
    _score()
    with store.begin() as conn:
        query = select(OutboxRow.id, OutboxRow.payload).where(OutboxRow.operation == "update_fields")
        stale_id, payload = conn.execute(query.order_by(OutboxRow.id).limit(1)).one()
        fields = {**payload["fields"], "as_of": (TODAY - timedelta(days=40)).isoformat(), "health": 1.0}
        conn.execute(update(OutboxRow).where(OutboxRow.id == stale_id).values(payload={**payload, "fields": fields}))
    enqueue_deliveries(Settings.from_env(), store, vendors=["salesforce"])
    with store.connect() as conn:
        query = select(OutboxRow.id, OutboxRow.status).where(OutboxRow.vendor == "salesforce")
        statuses = {row_id: status for row_id, status in conn.execute(query)}
        stale = conn.execute(select(OutboxRow.last_error).where(OutboxRow.id == stale_id)).scalar_one()
    assert statuses.pop(stale_id) == "superseded" and "older than" in stale
    assert set(statuses.values()) <= {"done", "superseded"} and "done" in statuses.values()
