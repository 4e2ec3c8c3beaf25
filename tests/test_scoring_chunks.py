"""Scoring in account chunks gives the book-at-once run's results bit for bit: scores, outbox rows, actions, bands."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from app.programs.definitions import active_programs
from app.programs.tick import enroll
from app.report import book_by_band
from app.rescoring import rescore
from app.scoring import score_and_store
from app.scoring_chunks import active_ids, score_in_chunks
from app.store.models import Score
from app.writeback.outbox import plan_field_writes, release_due_actions
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from tests.scale_support import AS_OF, load_linked_book, run_outcome

NOW = datetime(2026, 6, 30, 23, 0)
PROGRAMS = active_programs(None, DEFAULT_PROGRAMS_DIR)


def _book_at_once(store) -> tuple[dict, dict]:
    """The run as it was before chunking (one frame for the whole book), rolled back after reading its outcome."""
    with store.connect() as conn, conn.begin() as transaction:
        scored = score_and_store(conn, AS_OF, load_health_config())
        plan_field_writes(conn, scored, AS_OF, 2.0)
        enroll(conn, PROGRAMS, scored, NOW)
        release_due_actions(conn, NOW)
        outcome = run_outcome(conn)
        transaction.rollback()
    return outcome, book_by_band(scored)


def test_chunked_run_matches_the_book_at_once(store):
    load_linked_book(store)
    expected, expected_summary = _book_at_once(store)
    assert len(expected["scores"]) == 60 and len(expected["outbox"]) >= 60 and len(expected["enrollments"]) > 0

    result = rescore(store, AS_OF, load_health_config(), 2.0, now=NOW, chunk_size=7, programs=PROGRAMS)

    with store.connect() as conn:
        got = run_outcome(conn)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)
    assert result.totals.summary() == expected_summary
    assert result.accounts == 60


def test_chunks_cover_the_book_once(store):
    load_linked_book(store, accounts=30)
    with store.connect() as conn, conn.begin():
        run = score_in_chunks(conn, AS_OF, load_health_config(), 2.0, chunk_size=4)
        whole = score_in_chunks(conn, AS_OF, load_health_config(), 2.0, chunk_size=1000)
    assert run.totals.accounts == whole.totals.accounts == 30
    assert run.totals.summary() == whole.totals.summary()


def test_an_id_list_is_scored_in_chunks_too(store):
    load_linked_book(store, accounts=12)
    with store.connect() as conn:
        ids = active_ids(conn, AS_OF).tolist()
    wanted = ids[::3]
    assert len(wanted) == 4
    result = rescore(store, AS_OF, load_health_config(), 2.0, account_ids=wanted, chunk_size=2)
    with store.connect() as conn:
        scored = run_outcome(conn)["scores"]["account_id"].tolist()
    assert scored == wanted
    assert result.accounts == len(wanted)


def test_a_second_chunked_run_of_the_day_writes_no_score_twice(store):
    """Chunks read the stored scores by id range: a rerun finds every account's score and stores nothing new."""
    load_linked_book(store, accounts=20)
    config = load_health_config()
    rescore(store, AS_OF, config, 2.0, now=NOW, chunk_size=6)
    with store.connect() as conn:
        first = run_outcome(conn)["scores"]
    rescore(store, AS_OF, config, 2.0, now=NOW, chunk_size=6)
    with store.connect() as conn:
        pd.testing.assert_frame_equal(run_outcome(conn)["scores"], first, check_exact=True)
    assert len(first) == 20


def test_a_chunk_reads_the_texts_of_the_few_rows_whose_numbers_match_and_finds_their_changes(store):
    """A chunk compares numbers first and reads the text and JSON values of only the rows whose numbers all match
    (by id when they are few): such a row whose drivers changed is written, one that says the same is not."""
    load_linked_book(store, accounts=20)
    config = load_health_config()
    rescore(store, AS_OF, config, 2.0, now=NOW, chunk_size=20)
    latest = select(Score.id).where(Score.as_of == AS_OF)
    count = select(Score.account_id, func.count()).group_by(Score.account_id)
    with store.begin() as conn:
        before = dict(conn.execute(count).all())
        today = set(conn.scalars(select(Score.account_id).where(Score.id.in_(latest))))
        still, texts_only = sorted(today)[:2]
        conn.execute(update(Score).where(Score.id.in_(latest), Score.account_id.not_in([still, texts_only]))
                     .values(health=Score.health + 1))  # fmt: skip
        drivers = conn.scalar(select(Score.drivers).where(Score.id.in_(latest), Score.account_id == texts_only))
        conn.execute(update(Score).where(Score.id.in_(latest), Score.account_id == texts_only)
                     .values(drivers=[*drivers, "other"]))  # fmt: skip
    rescore(store, AS_OF, config, 2.0, now=NOW, chunk_size=20)
    with store.connect() as conn:
        after = dict(conn.execute(count).all())
    assert len(today) == 20
    assert after == {account: n + (account in today and account != still) for account, n in before.items()}


def test_postgresql_plans_chunks_as_key_ranges_without_jit(store):
    if store.dialect.name != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    load_linked_book(store, accounts=10)
    with store.connect() as conn, conn.begin():
        score_in_chunks(conn, AS_OF, load_health_config(), 2.0, chunk_size=2)
        settings = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in ("jit", "random_page_cost")]
    assert settings == ["off", "1.1"]


def test_a_past_day_is_compared_with_the_history_not_the_newer_current_score(store):
    """A run for a past day (a backfill) finds the account's current score newer than the day, so it compares
    with the latest row on or before the day in the history: rescoring a day already scored stores nothing."""
    load_linked_book(store, accounts=20)  # scored on AS_OF - 30 and AS_OF - 7
    config = load_health_config()
    rescore(store, AS_OF, config, 2.0, chunk_size=6, write_back=False)
    past = AS_OF - timedelta(days=7)

    def rows_of_the_past_day() -> int:
        with store.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Score).where(Score.as_of == past))

    before = rows_of_the_past_day()
    rescore(store, past, config, 2.0, chunk_size=6, write_back=False)
    assert before == 20 and rows_of_the_past_day() == before
