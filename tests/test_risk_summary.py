"""`cse score`'s risk summary counts each account's latest score row of the day, once per account."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.ml.auto import ScoringModels
from app.risk_summary import risk_summary
from app.store.load import load_accounts
from app.store.models import Score
from tests.factories import AS_OF, accounts_frame


def test_the_risk_summary_counts_the_latest_row_of_the_day_per_account(store):
    with store.begin() as conn:
        ids = list(load_accounts(conn, accounts_frame(3)).values())
        rows = [  # account 0: a later row of the day without a probability; account 1: the day before only
            (ids[0], AS_OF, 0.2, 20.0), (ids[0], AS_OF, None, 30.0), (ids[1], AS_OF - timedelta(days=1), 0.5, 50.0),
            (ids[2], AS_OF, 0.1, None),
        ]  # fmt: skip
        conn.execute(Score.__table__.insert(), [
            {"account_id": a, "as_of": day, "computed_at": datetime(2026, 1, 1), "churn_probability": p, "risk": r}
            for a, day, p, r in rows
        ])  # fmt: skip
    summary = risk_summary(store, AS_OF, ScoringModels(artifact=None, calibration=None, state={}))["risk"]
    assert (summary["accounts"], summary["with_churn_probability"], summary["with_risk"]) == (2, 1, 1)
