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
