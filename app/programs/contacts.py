"""Who may be contacted, and when: the customer-facing rules a tick applies before its frequency caps.

* **Unsubscribed contacts get nothing.** A contact unsubscribed from email (Intercom's `unsubscribed_from_emails`,
  stored as `contacts.unsubscribed`) is not eligible (app/programs/eligibility.py), so it never receives a program
  message and the write-back never picks it as a recipient. An account with no eligible contact gets no
  customer-facing step: the step is recorded as `step_suppressed` and the enrollment moves on, so nothing piles up
  to send later (and the frequency caps count only what was sent).
* **Quiet periods defer, never drop.** A customer message that falls due in a quiet period of the account's local
  time (engine/programs/quiet.py) waits until the period ends; the next tick sends it, within the caps then. The
  periods are the global settings', plus (or, with `replace: true`, instead) those of the message's program.

Churned accounts never get here: a tick first ends their enrollments (app/programs/tick.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Select, select

from app.store.models import Account
from engine.programs.quiet import QuietRules, parse_quiet, reopens_at


def _timezones(conn: Connection, accounts: Select) -> pd.Series:
    """The timezone of the accounts `accounts` selects that have one (the others use the default)."""
    query = select(Account.id, Account.timezone).where(Account.id.in_(accounts), Account.timezone.is_not(None))
    return pd.Series(dict(conn.execute(query).all()), dtype=object)


def apply_contact_rules(
    conn: Connection,
    due: pd.DataFrame,
    customer: pd.Series,
    accounts: Select,
    contacts: pd.DataFrame,
    now: datetime,
    quiet: Mapping[str, QuietRules],
) -> pd.Series:
    """Mark due customer-facing rows (of the accounts `accounts` selects) `suppressed` (their account has no
    eligible contact: `contacts`, indexed by account, from eligibility.recipients) or `deferred` to the end of a
    quiet period of their program (`quiet`: program -> its rules; in `due`'s `outcome` / `defer_until`); returns the
    customer rows still to send. Worked per program (a handful), never per row."""
    if not customer.any():
        return customer
    nobody = customer & ~due["account_id"].astype(int).isin(contacts.index)
    due.loc[nobody, "outcome"] = "suppressed"
    customer = customer & ~nobody
    programs = due.loc[customer, "program"]
    zones = None
    for name, rows in programs.groupby(programs, sort=False):
        if quiet[name].empty:
            continue
        zones = _timezones(conn, accounts) if zones is None else zones
        reopen = reopens_at(now, due.loc[rows.index, "account_id"].astype(int).map(zones), quiet[name])
        waiting = reopen.index[reopen.notna()]
        due.loc[waiting, "outcome"] = "deferred"
        due.loc[waiting, "defer_until"] = reopen[waiting]
    return customer & (due["outcome"] == "send")


def quiet_rules_of(settings) -> QuietRules:
    """Quiet periods from CSE_QUIET_WEEKDAYS, CSE_QUIET_HOURS, CSE_QUIET_BLACKOUTS and CSE_DEFAULT_TIMEZONE."""
    return parse_quiet(settings.quiet_weekdays, settings.quiet_hours, settings.quiet_blackouts,
                       settings.default_timezone)  # fmt: skip
