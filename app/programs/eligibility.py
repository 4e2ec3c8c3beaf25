"""Who may be contacted: the one place that decides which contacts a customer-facing step may reach.

Every rule about a contact the programs must not message (an unsubscribe, a quiet period, a churned contact …)
is a clause of `contact_is_eligible`; everything downstream reads contacts through it and so obeys it: the tick's
reach test and personalisation (app/programs/tick.py, through `eligible_contacts`) and the recipient the outbox
picks for a message (app/writeback/outbox.py, in SQL, by the same RECIPIENT_ORDER). An account whose contacts are
all ineligible has no recipient, so its messages are never sent (the action ends `no_target`).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, and_, select

from app.store.bulk import fetch_frame
from app.store.models import Contact


def contact_is_eligible(now: datetime) -> ColumnElement[bool]:
    """The condition a contact must meet to receive a customer-facing step at `now` (add new rules here): an email,
    and not unsubscribed from email (Intercom's unsubscribed_from_emails)."""
    return and_(Contact.email.is_not(None), Contact.unsubscribed.is_(False))


# Which of an account's eligible contacts a message goes to: the champion, else the executive sponsor, else the
# contact seen last.
RECIPIENT_ORDER = (Contact.is_champion.desc(), Contact.is_exec_sponsor.desc(), Contact.last_seen.desc().nulls_last(),
                   Contact.id)  # fmt: skip


def eligible_contacts(now: datetime, accounts: Select | None = None) -> Select:
    """Eligible contacts (of the accounts `accounts` selects, when given), best recipient first per account
    (RECIPIENT_ORDER)."""
    query = select(Contact.account_id, Contact.email, Contact.name, Contact.last_seen).where(contact_is_eligible(now))
    if accounts is not None:
        query = query.where(Contact.account_id.in_(accounts))
    return query.order_by(Contact.account_id, *RECIPIENT_ORDER)


def recipients(conn: Connection, now: datetime, accounts: Select | None = None) -> pd.DataFrame:
    """Per account (index) with an eligible contact: the recipient's `email`, `name` and `last_seen`, and
    `latest_seen`, the last time any eligible contact of the account was seen (whether in-app messages reach it)."""
    contacts = fetch_frame(conn, eligible_contacts(now, accounts), ["account_id", "email", "name", "last_seen"])
    contacts["last_seen"] = pd.to_datetime(contacts["last_seen"])
    latest = contacts.groupby("account_id")["last_seen"].max()
    first = contacts.drop_duplicates("account_id").set_index("account_id")
    return first.assign(latest_seen=latest.reindex(first.index))


def no_recipients() -> pd.DataFrame:
    """What `recipients` returns for no account (a round whose steps need no contact reads none)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ("email", "name", "last_seen", "latest_seen")},
                        index=pd.Index([], dtype="int64", name="account_id"))  # fmt: skip
