"""The current-score table and the book per scoring day, which the web app reads instead of the score history:
both must say what the history says (each account's latest score by as_of then id; every customer's latest score
on or before each day), whatever order the days are scored in, and the migration must backfill them from it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select

from app.account_views import account_view, list_accounts
from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.rescoring import rescore
from app.scoring import score_and_store
from app.store.active import accounts_active_on
from app.store.book_days import record_book_day
from app.store.db import alembic_config, upgrade_schema
from app.store.models import Account, BookDay, BookDayMonth, BookDaySplit, CurrentScore, Score
from app.web import book
from engine.canonical import FACTORS
from engine.health_config import load_health_config
from tests.factories import AS_OF

COPIED = ("score_id", "as_of", "health", "band", "risk", "churn_probability", "trend_7d", "trend_30d",
          "expansion_score", "expansion_type", "revenue_potential")  # fmt: skip


def _newest_in_history(conn, on_or_before=None) -> dict[int, tuple]:
    """Each account's latest score row by (as_of, id), read the slow way, as current_scores holds it."""
    query = select(Score.account_id, Score.id, *(Score.__table__.c[c] for c in COPIED[1:]))
    if on_or_before is not None:
        query = query.where(Score.as_of <= on_or_before)
    newest: dict[int, tuple] = {}
    for row in conn.execute(query.order_by(Score.as_of, Score.id)):
        newest[row[0]] = tuple(row[1:])
    return newest


def _current(conn) -> dict[int, tuple]:
    columns = (CurrentScore.__table__.c[c] for c in COPIED)
    return {row[0]: tuple(row[1:]) for row in conn.execute(select(CurrentScore.account_id, *columns))}


def _book_day(conn, day) -> dict[tuple, tuple]:
    rows = conn.execute(select(BookDay.__table__).where(BookDay.as_of == day))
    return {(r.segment, r.owner, r.band): (r.accounts, round(r.health_sum, 6), r.health_n) for r in rows}


def _recorded(conn, day) -> dict[str, set[tuple]]:
    """Every row of the day in the three book tables, floats rounded (sums may be added in another order)."""
    return {
        table.__tablename__: {
            tuple(round(v, 6) if isinstance(v, float) else v for v in row)
            for row in conn.execute(select(table.__table__).where(table.as_of == day))
        }
        for table in (BookDay, BookDaySplit, BookDayMonth)
    }


def _book_day_from_history(conn, day) -> dict[tuple, tuple]:
    """The book of `day` summed in Python from the history: customers that day and their latest score by then."""
    newest = _newest_in_history(conn, day)
    customers = conn.execute(select(Account.id, Account.segment, Account.owner).where(accounts_active_on(day)))
    sums: dict[tuple, list] = {}
    for account_id, segment, owner in customers:
        if account_id in newest:
            health, band = newest[account_id][2], newest[account_id][3]
            entry = sums.setdefault((segment or "", owner or "", band or ""), [0, 0.0, 0])
            entry[0] += 1
            entry[1] += health or 0.0
            entry[2] += health is not None
    return {key: (n, round(total, 6), known) for key, (n, total, known) in sums.items()}


@pytest.fixture
def demo(store):
    generated = generate_book(BookSpec(seed=5, active_accounts=40, days=60, as_of=AS_OF))
    load_book(store, generated.accounts, generated.contacts, generated.events)
    return store


def test_the_current_score_is_the_newest_by_day_then_id_in_any_scoring_order(demo):
    config = load_health_config()
    with demo.begin() as conn:
        for day in (AS_OF - timedelta(days=7), AS_OF, AS_OF - timedelta(days=30), AS_OF):  # a backfill after today
            score_and_store(conn, day, config)
            assert _current(conn) == _newest_in_history(conn)
    rescore(demo, AS_OF + timedelta(days=1), config, 2.0, account_ids=[1, 2, 3], chunk_size=2)
    with demo.connect() as conn:
        current = _current(conn)
        assert current == _newest_in_history(conn)
        assert AS_OF + timedelta(days=1) in {current[i][1] for i in (1, 2, 3)}, "the partial rescoring moved none"
        assert len(current) == conn.scalar(select(func.count(func.distinct(Score.account_id))))


def test_a_book_day_counts_every_customer_not_only_the_scores_that_moved(demo):
    config = load_health_config()
    with demo.begin() as conn:
        score_and_store(conn, AS_OF, config)
        score_and_store(conn, AS_OF, config)  # nothing moved: no score row dated a second time
        # The day after, the accounts whose score did not move keep yesterday's row.
        score_and_store(conn, AS_OF + timedelta(days=1), config)
        later = AS_OF + timedelta(days=1)
        moved = conn.scalar(select(func.count()).where(Score.as_of == later))
        expected = _book_day_from_history(conn, later)
    with demo.connect() as conn:
        assert _book_day(conn, later) == expected
        assert _book_day(conn, AS_OF) == _book_day_from_history(conn, AS_OF)
        trend = book.health_trend(conn, later, book.BookFilter())
        summary = book.book_figures(conn, later, book.BookFilter())["summary"]
    assert moved < sum(n for n, _, _ in expected.values()), "the test needs an account whose score stayed"
    assert [day["as_of"] for day in trend] == [AS_OF, later]
    assert trend[-1]["bands"] == {band: b["count"] for band, b in summary["bands"].items()}
    health, known = sum(h for _, h, _ in expected.values()), sum(k for *_, k in expected.values())
    assert trend[-1]["avg_health"] == round(health / known, 1)


def test_recording_a_past_day_reads_the_history(demo):
    config = load_health_config()
    with demo.begin() as conn:
        for back in (30, 7, 0):
            score_and_store(conn, AS_OF - timedelta(days=back), config)
        conn.execute(BookDay.__table__.delete())
        record_book_day(conn, AS_OF - timedelta(days=7))
        assert _book_day(conn, AS_OF - timedelta(days=7)) == _book_day_from_history(conn, AS_OF - timedelta(days=7))


def test_the_migration_backfills_both_from_the_history(demo):
    config = load_health_config()
    days = (AS_OF - timedelta(days=120), AS_OF - timedelta(days=30), AS_OF - timedelta(days=7), AS_OF)
    with demo.begin() as conn:
        for day in days:
            score_and_store(conn, day, config)
        expected_current = _current(conn)
        expected_days = {day: _recorded(conn, day) for day in days[1:]}  # the backfill keeps the trend's 90 days
    assert all(rows for tables in expected_days.values() for rows in tables.values())
    command.downgrade(alembic_config(demo), "0016")  # the revision before the current-score tables
    upgrade_schema(demo)
    with demo.connect() as conn:
        assert _current(conn) == expected_current
        assert {day: _recorded(conn, day) for day in days[1:]} == expected_days
        assert _book_day(conn, days[0]) == {}


def test_cse_accounts_lists_the_current_scores_and_searches_the_history_behind_a_forecast(demo):
    config = load_health_config()
    with demo.begin() as conn:
        for day in (AS_OF - timedelta(days=7), AS_OF):
            score_and_store(conn, day, config)
    for forecast in (None, AS_OF + timedelta(days=5)):
        if forecast:
            with demo.begin() as conn:
                score_and_store(conn, forecast, config)
        with demo.connect() as conn:
            listed = {
                a["id"]: (a["as_of"], a["health"]) for a in list_accounts(conn, sort="name", limit=1000, as_of=AS_OF)
            }
            newest = _newest_in_history(conn, AS_OF)
            view = account_view(conn, 1)
            factors = conn.execute(
                select(*(getattr(Score, f"f_{f}") for f in FACTORS)).where(Score.id == _current(conn)[1][0])
            ).one()
        assert listed == {i: (row[1].isoformat(), round(row[2], 1)) for i, row in newest.items()}
        assert view["factors"] == {str(f): round(v, 1) for f, v in zip(FACTORS, factors, strict=True)}
