"""The store on SQLite and PostgreSQL: migrations, idempotent loads, rollups and point-in-time metrics."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, update

from app.store.db import alembic_config, upgrade_schema
from app.store.load import load_accounts, load_contacts, load_events, refresh_rollups
from app.store.metrics import account_metrics
from app.store.models import Account, AccountDay, ActivityEvent, Base, Feature
from engine.canonical import METRIC_COLUMNS
from tests.factories import AS_OF, accounts_frame, contacts_frame, event, events_frame

MIGRATIONS = Path(__file__).resolve().parents[1] / "app" / "store" / "migrations" / "versions"
CORE = ["tasks", "projects", "boards", "reports"]
ALL = [*CORE, "gantt", "docs"]


def _usage_events(key: str = "A0000", prefix: str = "e") -> list[dict]:
    """Two weeks of logins plus three core features and one extra feature used in the last 30 days."""
    rows = []
    for back in range(14):
        day = AS_OF - timedelta(days=back)
        rows.append(event(key, day, "login", count=2, value=50.0, uid=f"{prefix}-login-{back}"))
    for i, feature in enumerate(["tasks", "projects", "boards", "docs"]):
        day = AS_OF - timedelta(days=i)
        rows.append(event(key, day, "feature_used", feature=feature, count=3, uid=f"{prefix}-f{i}"))
    rows.append(event(key, AS_OF - timedelta(days=2), "feature_used", feature="tasks", count=1, uid=f"{prefix}-f9"))
    rows.append(event(key, AS_OF - timedelta(days=3), "ticket_opened", uid=f"{prefix}-t1"))
    rows.append(event(key, AS_OF - timedelta(days=1), "ticket_closed", value=12.0, uid=f"{prefix}-t2"))
    rows.append(event(key, AS_OF - timedelta(days=100), "milestone", feature="first_value", uid=f"{prefix}-m1"))
    return rows


def _load(store, accounts, events):
    with store.begin() as conn:
        ids = load_accounts(conn, accounts)
        contacts = load_contacts(conn, contacts_frame(accounts), ids)
        inserted = load_events(conn, events_frame(events), ids, contacts)
    return ids, inserted


def test_migrations_match_the_models(store):
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_import_no_code_of_ours():
    """A migration runs the schema as it was when written; importing app code ties it to code that moves on."""
    ours = {"app", "engine", "connectors", "mappings", "sandbox"}
    for path in sorted(MIGRATIONS.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add((node.module or "").split(".")[0])
        assert not imported & ours, f"{path.name} imports {sorted(imported & ours)}"


def test_stepping_back_over_every_migration_and_up_again_keeps_the_data(store):
    """On SQLite a batch migration rebuilds a table (copy, drop, rename): with foreign keys on, dropping `accounts`
    deleted every row that cascades from it, so a downgrade lost contacts, events and scores."""
    ids, inserted = _load(store, accounts_frame(2), _usage_events())
    command.downgrade(alembic_config(store), "0012")
    upgrade_schema(store)
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Account)) == 2
        assert conn.scalar(select(func.count()).select_from(ActivityEvent)) == inserted > 0


def test_reloading_the_same_records_changes_nothing(store):
    accounts = accounts_frame(2)
    ids, first = _load(store, accounts, _usage_events())
    _, second = _load(store, accounts, _usage_events())
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Account)) == 2
        assert conn.scalar(select(func.count()).select_from(ActivityEvent)) == first
        logins = conn.scalar(select(func.sum(AccountDay.logins)).where(AccountDay.account_id == ids["A0000"]))
    assert first == len(_usage_events()) and second == 0
    assert logins == 28


def test_account_upsert_updates_fields(store):
    _load(store, accounts_frame(1), [])
    _load(store, accounts_frame(1, arr=9999.0), [])
    with store.connect() as conn:
        assert conn.scalar(select(Account.arr)) == 9999.0


def test_metrics_from_rollups(store):
    ids, _ = _load(store, accounts_frame(2), _usage_events())
    with store.connect() as conn:
        metrics = account_metrics(conn, AS_OF, CORE, ALL)
    row = metrics.loc[ids["A0000"]]
    assert row["core_adoption"] == pytest.approx(3 / 4)
    assert row["feature_breadth"] == pytest.approx(4 / 6)
    assert row["active_days_per_week"] == pytest.approx(14 / 4)
    assert row["avg_session_minutes"] == pytest.approx(25.0)
    assert row["tickets_per_seat_30d"] == pytest.approx(1 / 8)
    assert row["avg_resolution_hours"] == pytest.approx(12.0)
    assert row["ttfv_days"] == pytest.approx(100.0)
    assert row["has_champion"] == 1.0
    assert row["active_user_share"] == pytest.approx(0.8)
    assert row["days_since_login"] == 0
    assert row["days_since_feature_use"] == 0
    assert pd.isna(row["usage_change_28d"]), "no logins in the 28 days before: no baseline to compare with"
    # The second account has no usage feed at all: its usage metrics are unknown, not zero.
    other = metrics.loc[ids["A0001"]]
    assert other[["core_adoption", "active_days_per_week", "tickets_per_seat_30d"]].isna().all()
    assert other["roi_pct"] == 250.0


def test_features_used_read_exactly_from_a_high_bit_and_beside_an_account_with_only_later_seats(store):
    """PostgreSQL ORs the ticket window's masks in the aggregates' query: a feature on bit 62 must survive the trip
    (as a float it would not), also when an account that has only a seat change after the day joins in."""
    ids, _ = _load(store, accounts_frame(2), _usage_events())
    _load(store, accounts_frame(2), [event("A0001", AS_OF + timedelta(days=3), "seat_change", value=2.0, uid="s")])
    high = 1 << 62
    with store.begin() as conn:
        old = conn.scalar(select(Feature.mask).where(Feature.key == "docs"))
        conn.execute(update(Feature).where(Feature.key == "docs").values(bit=62, mask=high))
        moved = AccountDay.features_mask.op("&")(~old).op("|")(high)
        conn.execute(update(AccountDay).where(AccountDay.features_mask.op("&")(old) != 0).values(features_mask=moved))
    with store.connect() as conn:
        metrics = account_metrics(conn, AS_OF, CORE, ALL)
    assert metrics.loc[ids["A0000"], "feature_breadth"] == pytest.approx(4 / 6)
    assert metrics.loc[ids["A0000"], "advanced_adoption"] == pytest.approx(1 / 2)
    assert metrics.loc[ids["A0001"], "seats_at_as_of"] == 8  # 10 seats today, 2 of them added after the day


def test_metrics_ignore_what_happened_after_the_scoring_date(store):
    ids, _ = _load(store, accounts_frame(1), _usage_events())
    with store.connect() as conn:
        before = account_metrics(conn, AS_OF - timedelta(days=5), CORE, ALL)
    later = [
        event("A0000", AS_OF - timedelta(days=1), "feature_used", feature="reports", uid="late-1"),
        event("A0000", AS_OF - timedelta(days=2), "login", count=9, value=9.0, uid="late-2"),
        event("A0000", AS_OF - timedelta(days=1), "seat_change", value=5.0, uid="late-3"),
    ]
    _load(store, accounts_frame(1, seats_purchased=15), later)
    with store.connect() as conn:
        after = account_metrics(conn, AS_OF - timedelta(days=5), CORE, ALL)
    point_in_time = [*METRIC_COLUMNS, "seats_at_as_of", "advanced_adoption"]
    pd.testing.assert_frame_equal(after[point_in_time], before[point_in_time])


def test_seat_growth_rolls_back_seat_changes(store):
    events = [
        event("A0000", AS_OF - timedelta(days=10), "seat_change", value=5.0, uid="s1"),
        event("A0000", AS_OF - timedelta(days=1), "login", uid="l1"),
    ]
    ids, _ = _load(store, accounts_frame(1, seats_purchased=15), events)
    with store.connect() as conn:
        now = account_metrics(conn, AS_OF, CORE, ALL).loc[ids["A0000"]]
        earlier = account_metrics(conn, AS_OF - timedelta(days=20), CORE, ALL).loc[ids["A0000"]]
    assert now["seat_growth_90d"] == pytest.approx(0.5)
    assert now["seats_at_as_of"] == 15
    assert earlier["seats_at_as_of"] == 10


def test_churned_accounts_are_not_scored_after_churn(store):
    accounts = accounts_frame(2)
    accounts.loc[1, "status"] = "churned"
    accounts.loc[1, "churned_at"] = AS_OF - timedelta(days=10)
    ids, _ = _load(store, accounts, [])
    with store.connect() as conn:
        now = account_metrics(conn, AS_OF, CORE, ALL)
        before = account_metrics(conn, AS_OF - timedelta(days=20), CORE, ALL)
    assert list(now.index) == [ids["A0000"]]
    assert set(before.index) == set(ids.values())


def test_usage_change_and_quiet_days(store):
    # 20 logins in the four weeks before the window, 5 in it, the last one 10 days ago.
    earlier = [event("A0000", AS_OF - timedelta(days=30 + d), "login", count=1, uid=f"old-{d}") for d in range(20)]
    recent = [event("A0000", AS_OF - timedelta(days=10 + d), "login", count=1, uid=f"new-{d}") for d in range(5)]
    ids, _ = _load(store, accounts_frame(1), earlier + recent)
    with store.connect() as conn:
        row = account_metrics(conn, AS_OF, CORE, ALL).loc[ids["A0000"]]
    assert row["usage_change_28d"] == pytest.approx(5 / 20 - 1)
    assert row["days_since_login"] == 10
    assert row["days_since_feature_use"] == 91


def test_accounts_deleted_in_every_crm_are_not_scored(store):
    accounts = accounts_frame(2)
    accounts.loc[1, "status"] = "deleted"
    ids, _ = _load(store, accounts, [])
    with store.connect() as conn:
        assert list(account_metrics(conn, AS_OF, CORE, ALL).index) == [ids["A0000"]]


def test_metrics_for_a_subset_of_accounts_match_the_whole_book(store):
    ids, _ = _load(store, accounts_frame(3), _usage_events())
    with store.connect() as conn:
        everyone = account_metrics(conn, AS_OF, CORE, ALL)
        one = account_metrics(conn, AS_OF, CORE, ALL, account_ids=[ids["A0000"]])
    pd.testing.assert_frame_equal(one, everyone.loc[[ids["A0000"]]])


def test_events_at_midnight_count_in_their_day_whatever_path_stored_them(store):
    """Bulk-loaded timestamps must compare like SQLAlchemy-bound ones (SQLite stores them as text)."""
    midnight = [event("A0000", AS_OF - timedelta(days=3), "login", count=2, value=10.0, uid="m1", hour=0)]
    ids, _ = _load(store, accounts_frame(1), midnight)
    with store.begin() as conn:  # a later refresh of just that day must find the event again
        refresh_rollups(conn, [ids["A0000"]], AS_OF - timedelta(days=3), AS_OF - timedelta(days=3))
        logins = conn.scalar(select(func.sum(AccountDay.logins)).where(AccountDay.account_id == ids["A0000"]))
    assert logins == 2
