"""Point-in-time features from the store (SQLite and PostgreSQL): no leakage, correct windows and labels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from app.ml.dataset import activity_windows, build_panel, labels_for, observation_dates, snapshot_features
from app.ml.workers import model_workers
from app.store.load import load_accounts, load_contacts, load_events
from engine.health_config import HealthConfig, default_health_config
from engine.learning.features import FEATURES, window_column
from tests.factories import AS_OF, accounts_frame, contacts_frame, event, events_frame

CORE = ["tasks", "projects", "boards", "reports"]
D = AS_OF - timedelta(days=60)  # the observation date of the leakage test


def _config() -> HealthConfig:
    data = default_health_config().model_dump()
    data["features"], data["core_features"] = [*CORE, "gantt", "docs"], CORE
    return HealthConfig.from_mapping(data)


def _history(key: str, prefix: str, first: int, last: int) -> list[dict]:
    """Activity on days AS_OF - first .. AS_OF - last: logins, features, tickets, surveys, signals, seat moves."""
    rows = []
    for back in range(last, first + 1):
        day = AS_OF - timedelta(days=back)
        rows.append(event(key, day, "login", count=1 + back % 3, value=20.0 + back % 7, uid=f"{prefix}-l{back}"))
        feature = CORE[back % len(CORE)] if back > 80 or back % 2 else "docs"
        rows.append(event(key, day, "feature_used", feature=feature, count=2, uid=f"{prefix}-f{back}"))
        if back % 9 == 0:
            rows.append(event(key, day, "ticket_opened", uid=f"{prefix}-t{back}"))
            rows.append(event(key, day, "ticket_closed", value=6.0, uid=f"{prefix}-c{back}"))
        if back % 17 == 0:
            rows.append(event(key, day, "survey_response", value=float(back % 11), uid=f"{prefix}-s{back}"))
            rows.append(event(key, day, "escalation", uid=f"{prefix}-e{back}"))
        if back % 23 == 0:
            rows.append(event(key, day, "outreach", uid=f"{prefix}-o{back}"))
            rows.append(event(key, day, "email_replied", uid=f"{prefix}-r{back}"))
        if back % 31 == 0:
            rows.append(event(key, day, "seat_change", value=2.0, uid=f"{prefix}-seat{back}"))
            rows.append(event(key, day, "competitor_mention", uid=f"{prefix}-cm{back}"))
    return rows


def _load(store, accounts, rows):
    with store.begin() as conn:
        ids = load_accounts(conn, accounts)
        contacts = load_contacts(conn, contacts_frame(accounts), ids)
        load_events(conn, events_frame(rows), ids, contacts)
    return ids


def test_features_at_d_are_unchanged_by_events_after_d(store):
    config = _config()
    accounts = accounts_frame(3, customer_since=AS_OF - timedelta(days=400))
    past = [r for k in ("A0000", "A0001") for r in _history(k, f"p{k}", 150, 61)]
    ids = _load(store, accounts, past)
    with store.connect() as conn:
        before = snapshot_features(conn, D, config)

    # Everything that can happen after D: more activity of every kind, a silent account waking up, seats added
    # (the CRM then reports the new seat count), a first-value milestone, a churn signal.
    future = [r for k in ("A0000", "A0001", "A0002") for r in _history(k, f"f{k}", 59, 0)]
    future.append(event("A0001", AS_OF - timedelta(days=10), "milestone", feature="first_value", uid="late-fv"))
    grown = accounts.copy()
    for key in grown["key"]:
        added = sum(r["value"] for r in future if r["kind"] == "seat_change" and r["account_key"] == key)
        grown.loc[grown["key"] == key, "seats_purchased"] += int(added)
    _load(store, grown, future)
    with store.connect() as conn:
        after = snapshot_features(conn, D, config)

    assert set(before.columns) == set(FEATURES)
    assert before.loc[ids["A0000"], "logins_per_seat_30d"] > 0  # the history is really there
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_activity_windows_match_the_events(store):
    config = _config()
    rows = _history("A0000", "w", 120, 0)
    ids = _load(store, accounts_frame(1), rows)
    with store.connect() as conn:
        windows = activity_windows(conn, AS_OF, config.core_features)
    events = events_frame(rows)
    back = (pd.Timestamp(AS_OF) - events["occurred_at"].dt.normalize()).dt.days
    logins = events["kind"] == "login"
    row = windows.loc[ids["A0000"]]
    for w in range(3):
        in_window = (back >= 30 * w) & (back < 30 * (w + 1))
        assert row[window_column("logins", w)] == events.loc[logins & in_window, "count"].sum()
        assert row[window_column("active_days", w)] == (logins & in_window).sum()
        tickets = (events["kind"] == "ticket_opened") & in_window
        assert row[window_column("tickets_opened", w)] == tickets.sum()
    assert pd.Timestamp(row["last_login_day"]) == pd.Timestamp(AS_OF)
    # Within 80 days only odd days use a core feature (projects, reports); tasks and boards stopped before that.
    assert row["core_recent__projects"] == 1 and row["core_prior__projects"] == 1
    assert row["core_recent__tasks"] == 0 and row["core_prior__tasks"] == 1
    with store.connect() as conn:
        features = snapshot_features(conn, AS_OF, config)
    assert features.loc[ids["A0000"], "core_features_abandoned"] == 2  # tasks and boards


def test_labels_look_forward_from_the_observation_date():
    index = pd.Index([1, 2, 3, 4])
    outcomes = pd.DataFrame(
        {"churned_at": pd.to_datetime(["2026-01-20", "2026-03-15", None, "2026-01-05"])}, index=index
    )
    expansions = pd.DataFrame({"account_id": [3, 4], "day": pd.to_datetime(["2026-01-25", "2026-03-01"])})
    labels = labels_for(index, pd.Timestamp("2026-01-01").date(), 30, outcomes, expansions,
                        pd.Timestamp("2026-06-30").date())  # fmt: skip
    assert labels["churned"].tolist() == [1, 0, 0, 1]
    assert labels["expanded"].tolist() == [0, 0, 1, 0]
    assert labels["event"].tolist() == [1, 1, 0, 1]
    assert labels["duration_days"].tolist() == [19.0, 73.0, 180.0, 4.0]


def test_observation_dates_end_on_the_last_day():
    first, last = AS_OF - timedelta(days=20), AS_OF
    dates = observation_dates(first, last, 7)
    assert dates[-1] == last and dates[0] >= first and np.all(np.diff([d.toordinal() for d in dates]) == 7)
    assert observation_dates(last, first, 7) == []


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_panel_keeps_only_dates_with_full_lookback_and_known_labels(store):
    config = _config()
    accounts = accounts_frame(2, customer_since=AS_OF - timedelta(days=400))
    churned = accounts.copy()
    churned.loc[1, ["status", "churned_at"]] = ["churned", AS_OF - timedelta(days=40)]
    _load(store, churned, [r for k in ("A0000", "A0001") for r in _history(k, k, 200, 21)])
    with store.connect() as conn:
        panel = build_panel(conn, config, horizon_days=30, every_days=7)
    frame = panel.frame
    assert panel.data_start is not None and panel.data_end is not None
    assert frame["as_of"].min() >= pd.Timestamp(panel.data_start + timedelta(days=89))
    assert frame["as_of"].max() <= pd.Timestamp(panel.data_end - timedelta(days=30))
    # The churned account is only observed while it is a customer, and labelled 1 in its last 30 days.
    churner = frame[frame["churned"] == 1]
    assert len(churner) >= 1
    assert (pd.Timestamp(AS_OF - timedelta(days=40)) - churner["as_of"]).dt.days.max() <= 30
    assert (
        frame.loc[frame["account_id"] == churner["account_id"].iloc[0], "as_of"]
        < pd.Timestamp(AS_OF - timedelta(days=40))
    ).all()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_history_shorter_than_the_lookback_gives_an_empty_panel_without_reading_outcomes(store, monkeypatch):
    """A book's first run (60 days of rollups) has no observation date: the refresh must not read every account's
    outcome and expansion days for nothing (~5 s of a million-account first run)."""
    _load(store, accounts_frame(2, customer_since=AS_OF - timedelta(days=400)),
          [r for k in ("A0000", "A0001") for r in _history(k, k, 60, 0)])  # fmt: skip

    def unexpected(conn):
        raise AssertionError("read although no date can be observed")

    monkeypatch.setattr("app.ml.dataset._account_outcomes", unexpected)
    monkeypatch.setattr("app.ml.dataset._expansion_days", unexpected)
    with store.connect() as conn:
        panel = build_panel(conn, _config(), horizon_days=30, every_days=7, through_end=True)
    assert panel.frame.empty and panel.dates == []
    assert (panel.data_start, panel.data_end) == (AS_OF - timedelta(days=60), AS_OF)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
def test_panel_built_on_worker_processes_is_the_panel_built_in_turn(store, monkeypatch):
    """load_panel hands build_panel its engine and the refresh's worker processes, which build the snapshots on
    connections of their own: same rows, same order, and none of the snapshots built in this process."""
    built_here: list[date] = []

    def spy(conn, as_of, config, *args, **kwargs):
        built_here.append(as_of)
        return snapshot_features(conn, as_of, config, *args, **kwargs)

    monkeypatch.setattr("app.ml.dataset.snapshot_features", spy)
    config = _config()
    accounts = accounts_frame(3, customer_since=AS_OF - timedelta(days=400))
    accounts.loc[1, ["status", "churned_at"]] = ["churned", AS_OF - timedelta(days=40)]
    _load(store, accounts, [r for k in ("A0000", "A0001", "A0002") for r in _history(k, k, 200, 21)])
    with store.connect() as conn:
        in_turn = build_panel(conn, config, horizon_days=30, every_days=7)
        assert len(in_turn.dates) > 2 and built_here == in_turn.dates
        built_here.clear()
        with model_workers(2) as pool:
            on_workers = build_panel(conn, config, horizon_days=30, every_days=7, engine=store, pool=pool)
    assert built_here == []
    pd.testing.assert_frame_equal(in_turn.frame, on_workers.frame)
