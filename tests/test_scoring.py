"""A scoring run through the real store: scores land per account, history gives trends, the book sums up."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.report import book_by_band
from app.scoring import previous_health, score_and_store
from app.store.load import load_accounts, load_contacts, load_events
from app.store.models import Score
from engine.health_config import load_health_config
from tests.factories import AS_OF, accounts_frame, contacts_frame, event, events_frame


def _logins(key: str, days: range, prefix: str) -> list[dict]:
    return [event(key, AS_OF - timedelta(days=d), "login", count=1, value=40.0, uid=f"{prefix}-{d}") for d in days]


@pytest.fixture
def loaded(store):
    accounts = accounts_frame(3)
    # Account 0 logs in daily for the last 60 days; account 1 stopped three weeks ago; account 2 has no usage feed.
    events = _logins("A0000", range(60), "a0") + _logins("A0001", range(21, 60), "a1")
    with store.begin() as conn:
        ids = load_accounts(conn, accounts)
        contacts = load_contacts(conn, contacts_frame(accounts), ids)
        load_events(conn, events_frame(events), ids, contacts)
    return store, ids


def test_scores_are_written_once_per_account(loaded):
    store, ids = loaded
    config = load_health_config()
    with store.begin() as conn:
        scored = score_and_store(conn, AS_OF, config)
    with store.connect() as conn:
        rows = pd.DataFrame(conn.execute(select(Score.account_id, Score.health, Score.band, Score.drivers)).all())
    assert sorted(rows["account_id"]) == sorted(ids.values())
    stored = rows.set_index("account_id")["health"]
    assert stored.to_dict() == pytest.approx(scored["health"].to_dict())
    assert stored[ids["A0000"]] > stored[ids["A0001"]]
    drivers = rows.set_index("account_id")["drivers"]
    assert "engagement" in drivers[ids["A0001"]]


def test_trends_come_from_score_history(loaded):
    store, ids = loaded
    config = load_health_config()
    with store.begin() as conn:
        month_ago = score_and_store(conn, AS_OF - timedelta(days=30), config)
        week_ago = score_and_store(conn, AS_OF - timedelta(days=7), config)
        today = score_and_store(conn, AS_OF, config)
        assert conn.scalar(select(func.count()).select_from(Score)) == 9
    lapsed = ids["A0001"]
    health = today.loc[lapsed, "health"]
    assert today.loc[lapsed, "trend_30d"] == pytest.approx(health - month_ago.loc[lapsed, "health"])
    assert today.loc[lapsed, "trend_7d"] == pytest.approx(health - week_ago.loc[lapsed, "health"])
    assert today.loc[lapsed, "trend_30d"] < 0
    assert pd.isna(month_ago.loc[lapsed, "trend_30d"])


def test_book_by_band_adds_up(loaded):
    store, _ = loaded
    with store.begin() as conn:
        scored = score_and_store(conn, AS_OF, load_health_config())
    summary = book_by_band(scored)
    assert set(summary["bands"]) == {"healthy", "at_risk", "critical", "churning"}
    assert sum(b["count"] for b in summary["bands"].values()) == summary["accounts"] == 3
    assert sum(b["share"] for b in summary["bands"].values()) == pytest.approx(1.0)
    json.dumps(summary)  # the CLI prints it as JSON


def test_a_score_row_is_written_only_when_a_value_moved(loaded):
    """A rerun of the same day adds nothing; the day after, only the accounts whose score moved get a row, and
    "the score on day D" (the latest row on or before D) still answers for every account."""
    from app.account_views import latest_scores

    store, ids = loaded
    config = load_health_config()
    with store.begin() as conn:
        first = score_and_store(conn, AS_OF, config)
        score_and_store(conn, AS_OF, config)
        assert conn.scalar(select(func.count()).select_from(Score)) == 3, "an unchanged rerun writes no row"
        # Account 2 has no usage feed, so its score the next day says the same; the others' windows moved.
        score_and_store(conn, AS_OF + timedelta(days=1), config)
        next_day = dict(conn.execute(select(Score.account_id, Score.as_of).where(Score.as_of > AS_OF)).all())
        on_day = dict(conn.execute(select(Score.account_id, Score.health).where(
            Score.id.in_(latest_scores(AS_OF + timedelta(days=1))))).all())  # fmt: skip
    assert ids["A0002"] not in next_day and ids["A0000"] in next_day
    assert set(on_day) == set(ids.values()), "every account has a score on the later day"
    assert on_day[ids["A0002"]] == pytest.approx(first.loc[ids["A0002"], "health"])


def test_a_rerun_compares_text_and_json_values_not_only_numbers(loaded):
    """The numbers decide most rows at once; a row whose numbers all match is compared on its text and JSON values,
    the JSON by what it says, not by how its text is spaced."""
    from sqlalchemy import update

    store, ids = loaded
    config = load_health_config()
    with store.begin() as conn:
        score_and_store(conn, AS_OF, config)
        drivers = conn.scalar(select(Score.drivers).where(Score.account_id == ids["A0000"]))
        respaced = json.dumps(drivers, indent=2)  # the same list, other text
        conn.execute(update(Score).where(Score.account_id == ids["A0000"]).values(drivers=drivers + ["other"]))
        conn.execute(update(Score).where(Score.account_id == ids["A0001"]).values(band_computed="other"))
        conn.exec_driver_sql(f"UPDATE scores SET drivers = '{respaced}' WHERE account_id = {ids['A0002']}")
        score_and_store(conn, AS_OF, config)
        # Where the risk came from is text too (it used to be read as a number, which made every value alike).
        conn.execute(update(Score).where(Score.account_id == ids["A0002"]).values(risk_source="model"))
        score_and_store(conn, AS_OF, config)
        rows = dict(conn.execute(select(Score.account_id, func.count()).group_by(Score.account_id)).all())
    assert rows == {ids["A0000"]: 2, ids["A0001"]: 2, ids["A0002"]: 2}


def test_numbers_that_differ_only_in_their_text_still_count_as_moved():
    """A row whose numbers all match is compared on its other columns only: so a zero stored as -0.0 (text "-0.0"
    in the comparison) against a new 0.0 must already count as a difference of the numbers."""
    from app.scoring import NUMBER_COLUMNS, _comparable, _numbers_differ

    new = pd.DataFrame({column: [0.0, 1.0] for column in NUMBER_COLUMNS})
    old = new.copy()
    old.loc[0, NUMBER_COLUMNS[0]] = -0.0
    assert list(_numbers_differ(new, old)) == [True, False]
    texts = _comparable(new, NUMBER_COLUMNS).to_numpy() != _comparable(old, NUMBER_COLUMNS).to_numpy()
    assert list(texts.any(axis=1)) == [True, False], "the text comparison tells the two zeros apart too"


def test_the_trend_baseline_is_the_latest_row_on_or_before_the_day_ties_by_id(loaded):
    """previous_health: the newest row on or before each lookback day (of two rows that day, the later written),
    whatever older or newer rows there are; an account with rows only after the day has none."""
    store, ids = loaded
    week_ago, month_ago = AS_OF - timedelta(days=7), AS_OF - timedelta(days=30)
    a, b, c = ids["A0000"], ids["A0001"], ids["A0002"]
    rows = [(a, month_ago - timedelta(days=40), 10.0), (a, month_ago - timedelta(days=2), 20.0),
            (a, week_ago, 30.0), (a, week_ago, 35.0), (a, AS_OF - timedelta(days=1), 99.0),
            (b, month_ago, 50.0), (c, AS_OF - timedelta(days=3), 70.0)]  # fmt: skip
    with store.begin() as conn:
        conn.execute(Score.__table__.insert(), [
            {"account_id": i, "as_of": day, "computed_at": AS_OF, "health": h, "band": "healthy"} for i, day, h in rows
        ])  # fmt: skip
        previous = previous_health(conn, AS_OF).reindex([a, b, c])
    assert previous["health_7d_ago"].tolist()[:2] == [35.0, 50.0]
    assert previous["health_30d_ago"].tolist()[:2] == [20.0, 50.0]
    assert previous.loc[c].isna().all()


def test_a_new_book_looks_up_no_trend_baseline(loaded):
    store, _ = loaded
    with store.begin() as conn:
        score_and_store(conn, AS_OF - timedelta(days=1), load_health_config())
        previous = previous_health(conn, AS_OF)
    assert previous.empty and list(previous.columns) == ["health_7d_ago", "health_30d_ago"]
