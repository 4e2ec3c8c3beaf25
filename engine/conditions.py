"""What a program condition may read: the scored account columns and their types, and the one risk scale.

Conditions (a program's entry, exits, tiers and audiences, engine/programs/definition.py) are written in the checked
expression language of engine/expressions.py (never pandas' eval: an edited file must not be able to run code),
checked against these columns when the file is loaded, and evaluated over all scored accounts at once.
"""

from __future__ import annotations

import pandas as pd

from engine.canonical import METRIC_COLUMNS, SIGNAL_COLUMNS, Band, Segment
from engine.expansion import EXPANSION_TYPES
from engine.expressions import Columns
from engine.learning.risk import PRIOR, RISK_SOURCES, risk_scale

# Columns a condition may read besides the metrics and signals.
SCORED_COLUMNS = (
    "health", "band", "trend_7d", "trend_30d", "churn_probability", "risk", "expansion_score", "expansion_type",
    "revenue_potential", "arr", "segment", "seats_active", "seats_purchased", "days_to_renewal", "risk_source",
)  # fmt: skip
# What a condition may read: every column is a number except these strings, whose values are known.
CONDITION_COLUMNS: Columns = {
    **{name: "number" for name in (*METRIC_COLUMNS, *SIGNAL_COLUMNS, *SCORED_COLUMNS)},
    "band": tuple(Band),
    "segment": tuple(Segment),
    "expansion_type": EXPANSION_TYPES,
    "risk_source": RISK_SOURCES,
}


def risk_of(frame: pd.DataFrame) -> pd.Series:
    """The one risk scale (0-100, engine.learning.risk) conditions read: the scored `risk` column, else the same
    scale derived here with the prior calibration (a frame scored elsewhere than app/scoring.py)."""
    if "risk" in frame:
        return pd.to_numeric(frame["risk"], errors="coerce")
    return risk_scale(frame["health"], frame.get("churn_probability"), PRIOR)[0]
