"""`cse score`'s risk summary counts every account the run scored, whether or not its score moved that day."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from app.band_totals import BandTotals
from app.ml.auto import ScoringModels
from app.risk_summary import risk_summary
from app.scoring_chunks import score_in_chunks
from app.store.models import Score
from engine.health_config import load_health_config
from tests.scale_support import AS_OF, load_linked_book

NO_MODELS = ScoringModels(artifact=None, calibration=None, state={})


def _chunk(probabilities: list, drivers: list, risks: list) -> pd.DataFrame:
    n = len(probabilities)
    return pd.DataFrame({"band": ["healthy"] * n, "health": [70.0] * n, "revenue_potential": [0.0] * n,
                         "churn_probability": probabilities, "risk_drivers": drivers, "risk": risks})  # fmt: skip


def test_the_counts_add_up_over_chunks_and_shards():
    first = BandTotals.of(_chunk([0.2, np.nan], [[{"feature": "logins"}], None], [20.0, 30.0]))
    second = BandTotals.of(_chunk([0.1], [None], [np.nan]))
    first.merge(BandTotals.from_json(second.to_json()))  # a shard's totals travel as JSON
    summary = risk_summary(first, NO_MODELS)["risk"]
    assert (summary["accounts"], summary["with_churn_probability"], summary["with_risk_drivers"],
            summary["with_risk"]) == (3, 2, 1, 2)  # fmt: skip


def test_the_next_days_run_reports_the_whole_book_though_some_scores_did_not_move(store):
    load_linked_book(store, accounts=30)
    runs = []
    for day in (AS_OF, AS_OF + timedelta(days=1)):
        with store.begin() as conn:
            runs.append(score_in_chunks(conn, day, load_health_config(), 2.0, chunk_size=7, write_back=False))
    with store.connect() as conn:
        written = conn.scalar(select(func.count()).select_from(Score).where(Score.as_of == AS_OF + timedelta(days=1)))
    assert 0 < written < 30  # the next day, only the accounts whose score moved get a row
    for run in runs:
        summary = risk_summary(run.totals, NO_MODELS)["risk"]
        assert summary["accounts"] == summary["with_churn_probability"] == summary["with_risk"] == 30
