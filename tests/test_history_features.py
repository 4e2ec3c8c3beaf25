"""engine.learning.history_features: the life-long per-type usage of an imported log, as of one date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.learning.history_features import event_type_features


def test_life_long_rate_reads_only_days_up_to_the_date_and_scales_by_the_observable_days() -> None:
    as_of = pd.Timestamp("2020-06-30")
    days = pd.date_range("2020-01-01", "2020-07-31", freq="D")  # the log spans 182 days up to as_of
    old = pd.DataFrame({"account_id": 1, "day": days, "feature": "post", "count": 2})  # 2 posts a day all along
    young = pd.DataFrame({"account_id": 2, "day": pd.date_range("2020-06-21", "2020-07-31"), "feature": "post",
                          "count": 1})  # fmt: skip
    events = pd.concat([old, young], ignore_index=True)
    index = pd.Index([1, 2, 3], name="account_id")
    tenure = pd.Series({1: 400.0, 2: 10.0, 3: 50.0})  # account 1 predates the log; account 3 never posted
    out = event_type_features(events, as_of, index, tenure)
    np.testing.assert_allclose(out["ev_post_per_month_life"], [60.0, 30.0, 0.0])
    np.testing.assert_allclose(out["ev_post_log_life"], np.log1p([2 * 182, 10, 0]))
    np.testing.assert_allclose(out["ev_post_log_30d"], np.log1p([60, 10, 0]))


def _daily(account: int, start: str, end: str, feature: str, count: int) -> pd.DataFrame:
    return pd.DataFrame({"account_id": account, "day": pd.date_range(start, end), "feature": feature, "count": count})


def test_usage_at_renewal_is_in_typical_months_of_the_book_and_capped_at_its_percentiles() -> None:
    as_of = pd.Timestamp("2020-03-31")
    heavy = _daily(1, "2020-01-01", "2020-03-31", "post", 4)  # 91 days x 4 posts, 120 a month
    light = _daily(2, "2020-03-02", "2020-03-31", "post", 1)  # 30 days x 1 post, 30 a month
    lighter = _daily(4, "2020-03-17", "2020-03-31", "post", 1)  # 15 posts in its 30 days
    index = pd.Index([1, 2, 3, 4], name="account_id")
    tenure = pd.Series({1: 91.0, 2: 30.0, 3: 60.0, 4: 30.0})  # account 3 never posted
    renewal = pd.Series({1: 10.0, 2: np.nan, 3: 5.0})  # accounts 2 and 4: no known renewal, their totals
    events = pd.concat([heavy, light, lighter], ignore_index=True)
    out = event_type_features(events, as_of, index, tenure, renewal)
    typical = out["ev_post_per_month_life"].mean()  # the book's typical month of posting on that date
    months = np.array([(364 + 4 * 10) / typical, 30 / typical, 0.0, 15 / typical])
    np.testing.assert_allclose(out["ev_post_typical_months_at_renewal"], np.log1p(months))
    median = (30 + 15) / 2 / typical  # the book's median: above it, more than enough by the book's standard
    np.testing.assert_allclose(out["ev_post_at_renewal_capped_p50"], [1.0, 1.0, 0.0, 15 / 22.5])
    np.testing.assert_allclose(out["ev_post_at_renewal_capped_p25"], np.minimum(months / np.quantile(months, 0.25), 1))
    assert np.quantile(months, 0.25) < median
    rare = pd.concat([heavy, _daily(1, "2020-03-01", "2020-03-01", "unfriend", 1)], ignore_index=True)
    did = event_type_features(rare, as_of, index, tenure, renewal)  # most accounts never unfriend: p10-p50 are 0
    np.testing.assert_allclose(did["ev_unfriend_at_renewal_capped_p50"], [1.0, 0.0, 0.0, 0.0])

    # Unit-free: a product whose customers do everything ten times as often gets the same features.
    tenfold = events.assign(count=events["count"] * 10)
    scaled = event_type_features(tenfold, as_of, index, tenure, renewal)
    columns = [c for c in out.columns if "at_renewal" in c]
    pd.testing.assert_frame_equal(scaled[columns], out[columns])


def test_usage_at_renewal_reads_nothing_after_the_observation_date() -> None:
    as_of = pd.Timestamp("2020-03-31")
    past = pd.concat([_daily(1, "2020-01-01", "2020-03-31", "post", 2), _daily(2, "2020-02-01", "2020-03-31",
                      "post", 1)], ignore_index=True)  # fmt: skip
    future = pd.concat([past, _daily(1, "2020-04-01", "2020-06-30", "post", 50),
                        _daily(3, "2020-04-01", "2020-06-30", "post", 50)], ignore_index=True)  # fmt: skip
    index = pd.Index([1, 2], name="account_id")
    tenure, renewal = pd.Series({1: 91.0, 2: 60.0}), pd.Series({1: 20.0, 2: 3.0})
    before = event_type_features(past, as_of, index, tenure, renewal)
    after = event_type_features(future, as_of, index, tenure, renewal)
    columns = [c for c in before.columns if "at_renewal" in c]
    assert len(columns) == 4
    pd.testing.assert_frame_equal(before[columns], after[columns])
