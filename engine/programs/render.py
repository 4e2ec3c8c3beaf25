"""Message bodies personalized from an account's data: `{column}` templates filled column-wise, never as code.

A template is split once with `string.Formatter().parse` (a parser; nothing is formatted or evaluated) into
literal text and plain field names, and the text of every account is built by concatenating whole pandas columns,
so rendering a step for 100,000 accounts is a handful of vectorized string operations.
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd

# What a message may name: the account's own data as the program tick reads it from the store.
MESSAGE_FIELDS: dict[str, str] = {
    "name": "the account (company) name",
    "first_name": 'first name of the contact the message goes to ("there" when unknown)',
    "owner": "the CSM who owns the account",
    "plan": "the plan",
    "arr": "annual recurring revenue, whole currency units",
    "seats_active": "active seats",
    "seats_purchased": "purchased seats",
    "roi_pct": "ROI in percent",
    "tenure_days": "days since the account became a customer",
    "days_to_renewal": "days until the renewal date",
    "logins_30d": "logins over the last 30 days",
    "active_days_30d": "days with a login over the last 30 days",
}


def _as_text(values: pd.Series) -> pd.Series:
    """Numbers without a trailing .0 and with thousands separators; missing values as a dash. Each distinct number
    is formatted once (seats, plans' prices and the like repeat across 100,000 accounts)."""
    if pd.api.types.is_numeric_dtype(values):
        codes, distinct = pd.factorize(pd.to_numeric(values, errors="coerce").round(0))  # a missing value: code -1
        text = np.array([*(f"{v:,.0f}" for v in distinct), "–"], dtype=object)[codes]
        return pd.Series(text, index=values.index)
    return values.astype(object).where(values.notna(), "–").astype(str)


def render(template: str, frame: pd.DataFrame) -> pd.Series:
    """The template filled for every row of `frame` (a column it lacks renders as a dash)."""
    out = pd.Series(np.full(len(frame), "", dtype=object), index=frame.index)
    for literal, field, _, _ in string.Formatter().parse(template):
        out = out + literal
        if field is not None:
            column = frame[field] if field in frame else pd.Series(np.nan, index=frame.index)
            out = out + _as_text(column)
    return out
