"""bench/churnsim_ceiling.py: the ceiling scores a panel row by the renewals in its horizon, and the observable
ceiling learns the hidden propensity from a customer's survival."""

import numpy as np
import pandas as pd
import pytest

from bench.churnsim_ceiling import SCORES, churn_probability, observable_bayes, window_scores

DAY = pd.Timestamp("2020-03-01")


def _records(rows: list[tuple[int, str, float, int]]) -> pd.DataFrame:
    """Hook rows (account, renewal date, p for every score, churned)."""
    frame = pd.DataFrame(rows, columns=["account_id", "decision_date", "p", "churned"])
    frame["decision_date"] = pd.to_datetime(frame["decision_date"])
    return frame.assign(**{name: frame["p"] for name in SCORES}).drop(columns="p")


def test_window_combines_the_renewals_inside_the_horizon_only() -> None:
    records = _records([
        (1, "2020-03-01", 0.9, 0),  # on the observation date: already decided, outside
        (1, "2020-03-02", 0.2, 0),
        (1, "2020-03-31", 0.5, 1),  # two renewals in 30 days (February is short)
        (2, "2020-04-15", 0.7, 1),  # after the horizon
        (3, "2020-03-20", 0.1, 0),
    ])  # fmt: skip
    rows = pd.DataFrame({"account_id": [1, 2, 3, 4], "as_of": [DAY] * 4, "churned": [1, 0, 0, 0]})
    scored = window_scores(rows, records, horizon=30).set_index("account_id")
    assert scored.loc[1, "full_oracle"] == pytest.approx(1 - 0.8 * 0.5)
    assert scored.loc[1, "oracle_churned"] == 1
    assert scored.loc[2, "full_oracle"] == 0.0 and scored.loc[2, "oracle_churned"] == 0
    assert scored.loc[3, "observable_bayes"] == pytest.approx(0.1)
    assert scored.loc[4, "full_oracle"] == 0.0  # no renewal recorded at all
    assert len(scored) == 4


def _history(account: int, utilities: list[float], propensity: float) -> list[dict]:
    dates = pd.date_range("2020-02-01", periods=len(utilities), freq="MS")
    return [{"account_id": account, "decision_date": d, "u_counts": u, "satisfaction": propensity}
            for d, u in zip(dates, utilities, strict=True)]  # fmt: skip


def test_without_a_hidden_factor_the_bayes_score_is_the_plain_probability() -> None:
    records = pd.DataFrame(_history(1, [-5.0, 3.0, 10.0], 1.0) + _history(2, [20.0, -1.0], 1.0))
    expected = churn_probability(records["u_counts"].to_numpy(), 0.135, 0.5)
    np.testing.assert_allclose(observable_bayes(records, 0.135, 0.5).sort_index(), expected)


def test_surviving_bad_months_reveals_a_forgiving_customer() -> None:
    """Two customers at the same utility: the one that stayed through months of negative utility is less likely a
    low-propensity customer (who divides a negative utility by a propensity below 1), so it churns less."""
    population = [row for k, s in enumerate(np.geomspace(0.35, 2.8, 40), start=10) for row in _history(k, [5.0], s)]
    newcomer = _history(1, [-20.0], 1.0)
    veteran = _history(2, [-20.0, -20.0, -20.0, -20.0], 1.0)
    records = pd.DataFrame(population + newcomer + veteran)
    score = observable_bayes(records, 0.135, 0.5)
    at_newcomer = score[records["account_id"] == 1].iloc[-1]
    at_veteran = score[records["account_id"] == 2].iloc[-1]
    assert at_veteran < at_newcomer
    assert at_newcomer == pytest.approx(score[records["account_id"] == 2].iloc[0])  # same utility, no history yet
