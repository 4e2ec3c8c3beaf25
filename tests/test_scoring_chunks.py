"""Scoring in account chunks gives the book-at-once run's results bit for bit: scores, outbox rows, actions, bands."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from app.programs.definitions import active_programs
from app.programs.tick import enroll
from app.report import book_by_band
from app.rescoring import rescore
from app.scoring import score_and_store
from app.scoring_chunks import active_ids, score_in_chunks
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
