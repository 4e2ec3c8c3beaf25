"""bench/fightchurn_data.py's export: ChurnSim's unsimulated last month is cut off, not read as everyone churning."""

from __future__ import annotations

import pandas as pd

from bench.fightchurn_data import merge_parts, shares, trim


def test_the_month_churnsim_did_not_simulate_is_cut_and_terms_running_past_it_stay_open() -> None:
    events = pd.DataFrame({"account_id": [1, 1, 2], "event_time": ["2020-05-30 10:00:00", "2020-06-02 09:00:00",
                                                                   "2020-05-10 08:00:00"]})  # fmt: skip
    terms = pd.DataFrame({"account_id": [1, 1, 2], "start_date": ["2020-05-05", "2020-06-05", "2020-04-10"],
                          "end_date": ["2020-06-05", "2020-07-05", "2020-05-10"]})  # fmt: skip
    kept_events, kept_terms = trim(events, terms, pd.Timestamp("2020-06-01"))
    assert kept_events["event_time"].tolist() == ["2020-05-30 10:00:00", "2020-05-10 08:00:00"]
    # account 1's term in force at the cut is open (a customer), account 2's ended before it (churned)
    assert kept_terms["account_id"].tolist() == [1, 2]
    assert pd.isna(kept_terms["end_date"].iloc[0]) and kept_terms["end_date"].iloc[1] == "2020-05-10"


def test_parts_share_the_customers_and_merge_with_distinct_account_ids() -> None:
    assert shares(3001, 4) == [751, 750, 750, 750] and sum(shares(3001, 4)) == 3001
    assert shares(3001, 4)[:3] == shares(751 + 750 + 750, 3)  # a finished prefix is a run of its own size
    first = (
        pd.DataFrame(
            {"account_id": [0, 1], "event_time": ["2020-01-02", "2020-01-01"], "event_type_id": 0, "user_id": 0}
        ),
        pd.DataFrame({"account_id": [0, 2], "start_date": ["2020-01-01"] * 2, "product": "basic"}),
    )
    second = (pd.DataFrame({"account_id": [0], "event_time": ["2020-01-01"], "event_type_id": 0, "user_id": 0}),
              pd.DataFrame({"account_id": [0, 1], "start_date": ["2020-01-05"] * 2, "product": "basic"}))  # fmt: skip
    events, terms = merge_parts([first, second])
    # part 1's ids start past part 0's largest id (2, from its terms): ChurnSim ids restart at 0 in every part
    assert sorted(terms["account_id"]) == [0, 2, 3, 4]
    assert events["account_id"].tolist() == [1, 3, 0]  # ordered by time, then account
