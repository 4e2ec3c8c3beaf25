"""What programs may read of survey answers: each account's latest NPS and CSAT answer, and how recent it is.

Answers come back into the store from the vendor (app/programs/surveys.py) as `survey_response` activity (NPS,
which also feeds the health score's `nps_90d` average) and as survey answers per contact. A program reads the
latest answer rather than the 90-day average, so a promoter is asked for advocacy and a detractor gets a recovery
task on the answer they just gave (`nps_days <= 30`), not on a quarter-old mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW_DAYS = 90
SURVEY_COLUMNS: dict[str, str] = {
    "nps_last": "number",  # the latest NPS answer (0-10) within 90 days
    "nps_days": "number",  # days since that answer
    "csat_last": "number",  # the latest CSAT rating (1-5) within 90 days
}


def survey_columns(answers: pd.DataFrame, accounts: pd.Index, now: pd.Timestamp) -> pd.DataFrame:
    """SURVEY_COLUMNS for `accounts` from answers (account_id, kind, score, answered_at); NaN without an answer."""
    out = pd.DataFrame(np.nan, index=accounts, columns=list(SURVEY_COLUMNS))
    if answers.empty:
        return out
    recent = answers[pd.to_datetime(answers["answered_at"]) > now - pd.Timedelta(days=WINDOW_DAYS)]
    latest = recent.sort_values("answered_at").drop_duplicates(["account_id", "kind"], keep="last")
    nps = latest[latest["kind"] == "nps"].set_index("account_id")
    csat = latest[latest["kind"] == "csat"].set_index("account_id")
    out["nps_last"] = nps["score"].reindex(accounts).to_numpy(dtype=float)
    days = (now - pd.to_datetime(nps["answered_at"])).dt.total_seconds() / 86_400
    out["nps_days"] = days.reindex(accounts).to_numpy(dtype=float)
    out["csat_last"] = csat["score"].reindex(accounts).to_numpy(dtype=float)
    return out
