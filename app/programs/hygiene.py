"""Contact hygiene and CSM capacity: what a tick does with each step that fell due, decided for all rows at once.

A due row is sent, held (control group), covered (a task for the same problem is already open) or deferred (a
message cap or the CSM's weekly task budget is full; the budget goes to the tasks of most ARR at risk x urgency);
a customer message goes by email to an account whose contacts have not been seen lately. Which contacts may be
reached at all is decided in one place, app/programs/eligibility.py; the per-account facts read here come from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, func, select

from app.programs.contacts import apply_contact_rules
from app.store.bulk import fetch_frame
from app.store.models import Account, Action, program_history
from app.store.open_tasks import OPEN_TASK_DAYS  # a task for the same problem sent since is still open
from engine.programs.definition import CHANNELS, CUSTOMER_CHANNELS
from engine.programs.quiet import QuietRules

EVENTS = program_history  # the stored events and the sent steps' actions
URGENCY = {"low": 1.0, "normal": 2.0, "high": 3.0, "urgent": 4.0}
REACH_DAYS = 14  # a contact not seen for this long gets an email instead of an in-app message


@dataclass
class Limits:
    """Contact hygiene and CSM capacity (settings CSE_MESSAGES_PER_WEEK, CSE_TASK_BUDGET_PER_CSM, CSE_QUIET_*)."""

    messages_per_week: int = 2
    task_budget_per_csm: int = 25
    quiet: QuietRules = QuietRules()


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of `now`'s week: the CSM task budget is per calendar week."""
    return datetime.combine((now - timedelta(days=now.weekday())).date(), datetime.min.time())


def _recent_messages(conn: Connection, accounts: Select, since: datetime) -> pd.Series:
    """Customer messages sent per account (of `accounts`) since `since`, across all programs."""
    query = (
        select(EVENTS.c.account_id, func.count())
        .where(EVENTS.c.kind == "step_sent", EVENTS.c.channel.in_(CUSTOMER_CHANNELS), EVENTS.c.at > since,
               EVENTS.c.account_id.in_(accounts))
        .group_by(EVENTS.c.account_id)
    )  # fmt: skip
    return pd.Series(dict(conn.execute(query).all()), dtype="float64")


def tasks_this_week(conn: Connection, now: datetime) -> pd.Series:
    """CRM tasks created this calendar week, per CSM (account owner): what the weekly budget has used."""
    query = (
        select(Account.owner, func.count())
        .select_from(Action)
        .join(Account, Account.id == Action.account_id)
        .where(Action.kind == "crm_task", Action.created_at >= week_start(now))
        .group_by(Account.owner)
    )
    return pd.Series(dict(conn.execute(query).all()), dtype="float64")


def _open_problems(conn: Connection, accounts: Select, since: datetime) -> pd.DataFrame:
    """(account_id, problem) of the tasks sent recently: still open, so no second task for the same problem.

    Every channel is named although a step has no other: a sent step is its action, and the actions' index on
    (kind, created_at) then reads only the recent ones (else every tick would read the whole action history)."""
    query = select(EVENTS.c.account_id, EVENTS.c.problem, EVENTS.c.enrollment_id).where(
        EVENTS.c.kind == "step_sent", EVENTS.c.channel.in_(CHANNELS), EVENTS.c.problem.is_not(None),
        EVENTS.c.at > since, EVENTS.c.account_id.in_(accounts),
    )  # fmt: skip
    rows = fetch_frame(conn, query.distinct(), ["account_id", "problem", "by"])
    return rows.astype({"account_id": "int64", "by": "int64"})


def capacity(rows: pd.DataFrame, used: pd.Series, group: str, limit: int, order: list[str]) -> np.ndarray:
    """Which rows fit the limit per `group`: the first ones in `order` until used + taken reaches the limit."""
    ranked = rows.sort_values(order, ascending=False, kind="stable")
    rank = ranked.groupby(group, dropna=False).cumcount()
    already = ranked[group].map(used).fillna(0.0)
    fits = (already + rank < limit) | ranked[group].isna()
    return fits.reindex(rows.index).to_numpy(dtype=bool)


def arr_at_risk(rows: pd.DataFrame) -> pd.Series:
    """ARR x risk (the share of the ARR expected to churn, from the account's latest score): what a CSM's hour is
    worth on the account. An unscored account counts at a risk of 1 %, so ARR still orders those among themselves."""
    risk = rows["risk"].fillna(1.0).clip(lower=1.0) if "risk" in rows else pd.Series(1.0, index=rows.index)
    return rows["arr"].fillna(0.0) * risk / 100


def _route_by_reach(due: pd.DataFrame, customer: pd.Series, contacts: pd.DataFrame, now: datetime) -> None:
    """An in-app message to an account none of whose eligible contacts was seen lately goes by email instead."""
    last = due.loc[customer, "account_id"].map(contacts["latest_seen"])
    unreachable = last.isna() | (last < pd.Timestamp(now - timedelta(days=REACH_DAYS)))
    inapp = due.loc[customer, "channel"] == "inapp_message"
    due.loc[inapp[inapp & unreachable].index, "channel"] = "email"


def decide(
    conn: Connection,
    due: pd.DataFrame,
    accounts: Select,
    contacts: pd.DataFrame,
    now: datetime,
    limits: Limits,
    quiet: Mapping[str, QuietRules] | None = None,
) -> pd.DataFrame:
    """Per due row (of the accounts `accounts` selects; `contacts` = eligibility.recipients of them): the
    `outcome` (send, held, covered, suppressed, deferred), the effective `channel` and, for a deferred row,
    `defer_until`. `quiet` gives a program's own quiet periods (program -> rules); the rest use `limits.quiet`."""
    quiet = defaultdict(lambda: limits.quiet, quiet or {})
    due = due.copy()
    due["outcome"] = np.where(due["holdout"].fillna(False).astype(bool), "held", "send")
    due["defer_until"] = pd.NaT
    sending = due["outcome"] == "send"
    customer = sending & due["channel"].isin(CUSTOMER_CHANNELS)
    customer = apply_contact_rules(conn, due, customer, accounts, contacts, now, quiet)
    if customer.any():
        _route_by_reach(due, customer, contacts, now)
        rows = due[customer].assign(urgency=due["priority"].map(URGENCY))
        recent = _recent_messages(conn, accounts, now - timedelta(days=7))
        fits = capacity(rows, recent, "account_id", limits.messages_per_week, ["urgency"])
        due.loc[rows.index[~fits], ["outcome", "defer_until"]] = ["deferred", now + timedelta(days=1)]
    tasks = sending & (due["channel"] == "crm_task")
    if tasks.any():
        open_problems = _open_problems(conn, accounts, now - timedelta(days=OPEN_TASK_DAYS))
        asked = due.loc[tasks, ["id", "account_id", "problem"]].astype({"account_id": "int64", "id": "int64"})
        found = asked.reset_index().merge(open_problems, on=["account_id", "problem"])
        covered = found.loc[found["by"] != found["id"], "index"]  # a task of another program (same one: escalation)
        due.loc[covered, "outcome"] = "covered"
        twice = due.loc[tasks].duplicated(["account_id", "problem"]) & due.loc[tasks, "problem"].notna()
        due.loc[twice[twice].index, "outcome"] = "covered"  # two programs due the same task for one problem
        tasks = tasks & (due["outcome"] == "send")
        rows = due[tasks].assign(value=arr_at_risk(due[tasks]) * due["priority"].map(URGENCY))
        fits = capacity(rows, tasks_this_week(conn, now), "owner", limits.task_budget_per_csm, ["value"])
        due.loc[rows.index[~fits], ["outcome", "defer_until"]] = ["deferred", week_start(now) + timedelta(days=7)]
    return due
