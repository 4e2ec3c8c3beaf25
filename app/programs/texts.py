"""The texts a program step sends: its variant for the enrollment's audience, filled from the account's data.

Templates are rendered column-wise (engine/programs/render.py), and the account data is read once per round: what
the due rows carry (app/programs/tick.py reads it with them), the recipient's first name (eligibility.recipients)
and, only when a text names it, the usage of the last 30 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Select, func, select

from app.programs.definitions import ActiveProgram
from app.store.bulk import fetch_frame
from app.store.models import AccountDay
from engine.programs.render import render

# The account columns the tick reads with each due row that message templates may name.
ACCOUNT_DATA = ["owner", "arr", "name", "plan", "seats_active", "seats_purchased", "roi_pct"]


def names_any(programs: dict[str, ActiveProgram], due: pd.DataFrame, fields: tuple[str, ...]) -> bool:
    """Whether the text of any step in `due` names one of `fields` (so its data must be read)."""
    steps = due[["program", "key"]].drop_duplicates().itertuples(index=False)
    texts = (t.title + t.body for name, key in steps for s in programs[name].program.steps if s.key == key
             for t in s.text.values())  # fmt: skip
    return any("{" + f + "}" in text for text in texts for f in fields)


def message_data(
    conn: Connection, sent: pd.DataFrame, accounts: Select, contacts: pd.DataFrame, now: datetime, need_usage: bool
) -> pd.DataFrame:
    """The account data message templates may name (engine/programs/render.MESSAGE_FIELDS), per account of the
    rows `sent` (read with them by the tick); `first_name` is the recipient's (eligibility.recipients), the usage is
    read for the accounts `accounts` selects."""
    rows = sent.drop_duplicates("account_id").set_index("account_id")
    data = rows[ACCOUNT_DATA].copy()
    today = pd.Timestamp(now.date())
    data["tenure_days"] = (today - pd.to_datetime(rows["customer_since"])).dt.days
    data["days_to_renewal"] = (pd.to_datetime(rows["renewal_date"]) - today).dt.days
    first = contacts["name"].astype(object).str.split().str[0]
    data["first_name"] = first.reindex(data.index).fillna("there")
    if need_usage:
        since = (now - timedelta(days=30)).date()
        query = (
            select(AccountDay.account_id, func.sum(AccountDay.logins), func.count())  # days with a login
            .where(AccountDay.account_id.in_(accounts), AccountDay.day >= since, AccountDay.logins > 0)
            .group_by(AccountDay.account_id)
        )
        usage = fetch_frame(conn, query, ["account_id", "logins_30d", "active_days_30d"])
        data = data.join(usage.astype({"account_id": "int64"}).set_index("account_id"))
        data[["logins_30d", "active_days_30d"]] = data[["logins_30d", "active_days_30d"]].astype("float64").fillna(0)
    return data


def step_texts(programs: dict[str, ActiveProgram], due: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """Title and body per row sent: the step's variant for the row's audience (else `default`), rendered from data.
    The tick builds each action's payload from them in the database (app/programs/tick.py)."""
    out = pd.DataFrame({"title": "", "body": ""}, index=due.index, dtype=object)
    for (name, key, audience), group in due.groupby(["program", "key", "audience"], dropna=False):
        step = next(s for s in programs[name].program.steps if s.key == key)
        variant = step.text.get(audience, step.text["default"])
        rows = data.reindex(group["account_id"].to_numpy()).set_axis(group.index)
        out.loc[group.index, "title"] = render(variant.title, rows)
        out.loc[group.index, "body"] = render(variant.body, rows)
    return out
