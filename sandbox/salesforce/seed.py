"""Fill a sandbox org from a canonical book of business, the way a company's Salesforce would hold it.

Only the accounts whose CRM is Salesforce land here (the others live in the HubSpot sandbox). Each becomes an
Account owned by its CSM (a User), with its Contacts; tickets become Cases (opened, escalated, closed), seat and
plan changes become Closed Won Opportunities, and CSM touches (outreach, replies, meetings) and churn signals
become completed Tasks. Audit stamps come from the book's own times, and the org clock is moved just past the
book's end, so anything a test changes afterwards is newer than every seeded record, as in a live org.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from sandbox.salesforce.org import SalesforceOrg

SEGMENTS = {"smb": "SMB", "mid_market": "Mid-Market", "enterprise": "Enterprise"}
LIFECYCLE = {"onboarding": "Onboarding", "adopted": "Adopted", "at_risk": "At Risk", "churned": "Churned"}
TASK_KINDS: dict[str, tuple[str, str, str]] = {  # kind -> (Type, TaskSubtype, Subject)
    "outreach": ("Email", "Email", "Email: Checking in"),
    "email_replied": ("Email Reply", "Email", "Re: Checking in"),
    "meeting": ("Meeting", "Call", "Business review"),
    "cancellation_inquiry": ("Cancellation Inquiry", "Call", "Asked about cancelling"),
    "competitor_mention": ("Competitor Mention", "Task", "Mentioned a competitor"),
}
TICKET_MATCH_SECONDS = 6 * 60  # closed - resolution hours lands within this of the opening (hours are rounded)
ESCALATION_WINDOW = timedelta(hours=36)


@dataclass
class SeedResult:
    """What was created, keyed by the book's identifiers, so tests can compare a pull with the book."""

    account_ids: dict[str, str] = field(default_factory=dict)  # book account key -> Account Id
    contact_ids: dict[str, str] = field(default_factory=dict)  # email -> Contact Id
    user_ids: dict[str, str] = field(default_factory=dict)  # owner email -> User Id
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _py(value: Any) -> Any:
    """pandas / numpy scalars to plain Python, with NaN / NaT as None."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _utc(value: Any) -> datetime | None:
    value = _py(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return _utc(pd.Timestamp(value))


def _day(value: Any) -> date | None:
    stamp = _utc(value)
    return stamp.date() if stamp else None


def _split_name(name: str | None, email: str) -> tuple[str | None, str]:
    if not name:
        local = email.split("@")[0].replace("_", ".")
        parts = [p.capitalize() for p in local.split(".") if p]
        name = " ".join(parts) or email
    first, _, last = name.strip().partition(" ")
    return (first, last) if last else (None, first)


def _frames(book: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if isinstance(book, tuple):
        return book
    return book.accounts, book.contacts, book.events


def seed_from_book(org: SalesforceOrg, book: Any, crm: str = "salesforce") -> SeedResult:
    """Seed `org` from `book` (a Book, or an (accounts, contacts, events) tuple of canonical frames)."""
    accounts, contacts, events = _frames(book)
    if "crm" in accounts.columns:
        accounts = accounts[accounts["crm"] == crm]
    keys = set(accounts["key"])
    contacts = contacts[contacts["account_key"].isin(keys)]
    events = events[events["account_key"].isin(keys)]
    if "source" in events.columns:
        events = events[events["source"].isin([crm, "crm"])]

    # The book's "now": its as_of, or the last thing that happened in it. Seeded records were last modified then;
    # the org clock starts just after, so later writes always sort after every seeded stamp.
    as_of = getattr(getattr(book, "spec", None), "as_of", None)
    ends = [
        _utc(v)
        for v in (
            as_of,
            _py(events["occurred_at"].max()) if len(events) else None,
            _py(accounts["customer_since"].max()) if len(accounts) else None,
        )
    ]
    stamp = max([e for e in ends if e is not None] or [datetime.now(UTC)]) + timedelta(minutes=1)
    org.set_clock(stamp + timedelta(minutes=1))

    result = SeedResult()
    with org.lock:
        _seed_users(org, accounts, stamp, result)
        _seed_accounts(org, accounts, stamp, result)
        _seed_contacts(org, contacts, accounts, stamp, result)
        _seed_cases(org, events, result)
        _seed_opportunities(org, events, accounts, result)
        _seed_tasks(org, events, accounts, result)
    return result


def _audit(created: datetime | None, modified: datetime, user: str) -> dict[str, Any]:
    created = min(created or modified, modified)
    return {
        "CreatedDate": created,
        "LastModifiedDate": modified,
        "SystemModstamp": modified,
        "CreatedById": user,
        "LastModifiedById": user,
    }


def _seed_users(org: SalesforceOrg, accounts: pd.DataFrame, stamp: datetime, result: SeedResult) -> None:
    owners = sorted({o for o in accounts.get("owner", pd.Series(dtype=object)).dropna()})
    for email in owners:
        first, last = _split_name(None, email)
        result.user_ids[email] = org.insert(
            "User",
            {
                "Username": email,
                "Email": email,
                "FirstName": first,
                "LastName": last,
                "IsActive": True,
                **_audit(stamp - timedelta(days=365 * 3), stamp, org.api_user_id),
            },
            raw=True,
        )
        result.counts["User"] += 1


def _seed_accounts(org: SalesforceOrg, accounts: pd.DataFrame, stamp: datetime, result: SeedResult) -> None:
    for row in accounts.to_dict("records"):
        owner = result.user_ids.get(_py(row.get("owner")) or "", org.api_user_id)
        status = _py(row.get("status")) or "active"
        plan = _py(row.get("plan"))
        domain = _py(row.get("domain"))
        values = {
            "Name": row["name"],
            "Type": "Customer - Direct" if status == "active" else "Other",
            "Website": f"https://www.{domain}" if domain else None,
            "AnnualRevenue": _py(row.get("arr")),
            "Plan__c": plan.title() if plan else None,
            "Seats_Purchased__c": _py(row.get("seats_purchased")),
            "Customer_Since__c": _day(row.get("customer_since")),
            "Renewal_Date__c": _day(row.get("renewal_date")),
            "Segment__c": SEGMENTS.get(_py(row.get("segment")) or ""),
            "Lifecycle_Stage__c": LIFECYCLE.get(_py(row.get("lifecycle_stage")) or ""),
            "Customer_Status__c": "Churned" if status == "churned" else "Active",
            "Churn_Date__c": _day(row.get("churned_at")),
            "OwnerId": owner,
            **_audit(_utc(row.get("customer_since")), stamp, owner),
        }
        result.account_ids[row["key"]] = org.insert("Account", values, raw=True)
        result.counts["Account"] += 1


def _seed_contacts(
    org: SalesforceOrg, contacts: pd.DataFrame, accounts: pd.DataFrame, stamp: datetime, result: SeedResult
) -> None:
    since = {r["key"]: _utc(r.get("customer_since")) for r in accounts.to_dict("records")}
    for row in contacts.to_dict("records"):
        account_id = result.account_ids[row["account_key"]]
        owner = org.records["Account"][account_id]["OwnerId"]
        first, last = _split_name(_py(row.get("name")), row["email"])
        role = _py(row.get("role"))
        values = {
            "AccountId": account_id,
            "FirstName": first,
            "LastName": last,
            "Email": row["email"],
            "Role__c": role.title() if role else None,
            "Champion__c": bool(_py(row.get("is_champion")) or False),
            "Executive_Sponsor__c": bool(_py(row.get("is_exec_sponsor")) or False),
            "OwnerId": owner,
            **_audit(since.get(row["account_key"]), stamp, owner),
        }
        result.contact_ids[row["email"]] = org.insert("Contact", values, raw=True)
        result.counts["Contact"] += 1


def _expanded(events: pd.DataFrame, kind: str) -> list[dict[str, Any]]:
    rows = events[events["kind"] == kind]
    out = []
    for row in rows.to_dict("records"):
        count = int(_py(row.get("count")) or 1)
        value = _py(row.get("value"))
        for _ in range(max(count, 1)):
            out.append({**row, "value": value / count if value is not None and count > 1 else value})
    out.sort(key=lambda r: _utc(r["occurred_at"]))
    return out


def _seed_cases(org: SalesforceOrg, events: pd.DataFrame, result: SeedResult) -> None:
    """One Case per ticket: closings are paired with their opening (closed - resolution hours), escalations with
    the latest opening of the same person within 36 hours; a closing without an opening in the window is a case
    opened before it."""
    opened = _expanded(events, "ticket_opened")
    closed = _expanded(events, "ticket_closed")
    escalations = _expanded(events, "escalation")
    tickets: list[dict[str, Any]] = []
    by_person: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for row in opened:
        key = (row["account_key"], _py(row.get("contact_email")) or "")
        tickets.append({"account": row["account_key"], "contact": key[1], "opened": _utc(row["occurred_at"])})
        by_person[key].append((tickets[-1]["opened"], len(tickets) - 1))
    for row in closed:
        key = (row["account_key"], _py(row.get("contact_email")) or "")
        at = _utc(row["occurred_at"])
        hours = float(_py(row.get("value")) or 0.0)
        target = at - timedelta(hours=hours)
        match = _nearest_unclosed(by_person[key], tickets, target, "closed")
        if match is None:
            tickets.append({"account": key[0], "contact": key[1], "opened": target, "closed": at})
        else:
            tickets[match]["closed"] = at
    for row in escalations:
        key = (row["account_key"], _py(row.get("contact_email")) or "")
        at = _utc(row["occurred_at"])
        times = by_person[key]
        i = bisect.bisect_right(times, (at, len(tickets)))
        while i > 0 and at - times[i - 1][0] <= ESCALATION_WINDOW:
            candidate = tickets[times[i - 1][1]]
            if "escalated" not in candidate:
                candidate["escalated"] = at
                break
            i -= 1

    for n, ticket in enumerate(tickets):
        account_id = result.account_ids[ticket["account"]]
        owner = org.records["Account"][account_id]["OwnerId"]
        closed_at = ticket.get("closed")
        escalated = ticket.get("escalated")
        modified = max(t for t in (ticket["opened"], closed_at, escalated) if t is not None)
        status = "Closed" if closed_at else "Escalated" if escalated else ("Working" if n % 2 else "New")
        values = {
            "AccountId": account_id,
            "ContactId": result.contact_ids.get(ticket["contact"]),
            "Subject": (
                "Cannot export report",
                "Automation not triggering",
                "Board permissions",
                "Billing question",
                "Slow dashboard",
            )[n % 5],
            "Status": status,
            "Priority": "High" if escalated else "Medium",
            "Origin": ("Email", "Web", "Chat")[n % 3],
            "ClosedDate": closed_at,
            "IsEscalated": escalated is not None,
            "Escalated_At__c": escalated,
            "OwnerId": owner,
            **_audit(ticket["opened"], modified, owner),
        }
        org.insert("Case", values, raw=True)
        result.counts["Case"] += 1


def _nearest_unclosed(
    times: list[tuple[datetime, int]], tickets: list[dict[str, Any]], target: datetime, flag: str
) -> int | None:
    best, best_gap = None, None
    i = bisect.bisect_left(times, (target, -1))
    for j in range(max(i - 3, 0), min(i + 3, len(times))):
        at, index = times[j]
        gap = abs((at - target).total_seconds())
        if flag in tickets[index] or gap > TICKET_MATCH_SECONDS:
            continue
        if best_gap is None or gap < best_gap:
            best, best_gap = index, gap
    return best


def _seed_opportunities(org: SalesforceOrg, events: pd.DataFrame, accounts: pd.DataFrame, result: SeedResult) -> None:
    """Seat and plan changes as Closed Won opportunities; the amount is the ARR change at the account's price."""
    info = {r["key"]: r for r in accounts.to_dict("records")}
    rows = events[events["kind"].isin(["seat_change", "plan_change"])].to_dict("records")
    for row in sorted(rows, key=lambda r: _utc(r["occurred_at"])):
        account = info[row["account_key"]]
        account_id = result.account_ids[row["account_key"]]
        owner = org.records["Account"][account_id]["OwnerId"]
        at = _utc(row["occurred_at"])
        delta = float(_py(row.get("value")) or 0.0)
        seats = _py(account.get("seats_purchased")) or 1
        per_seat = (_py(account.get("arr")) or 0.0) / max(seats, 1)
        values: dict[str, Any] = {
            "AccountId": account_id,
            "StageName": "Closed Won",
            "CloseDate": at.date(),
            "Probability": 100,
            "Type": "Existing Customer - Upgrade" if delta > 0 else "Existing Customer - Downgrade",
            "OwnerId": owner,
            **_audit(at - timedelta(days=14), at, owner),
        }
        if row["kind"] == "seat_change":
            values |= {
                "Name": f"{account['name']} - {delta:+.0f} seats",
                "Seat_Change__c": delta,
                "Amount": round(per_seat * delta, 2),
            }
        else:
            plan = _py(row.get("feature"))
            values |= {
                "Name": f"{account['name']} - {'upgrade' if delta > 0 else 'downgrade'} to {plan or 'new plan'}",
                "Plan_Change__c": delta,
                "New_Plan__c": plan.title() if plan else None,
                "Amount": round(0.25 * per_seat * seats * delta, 2),
            }
        org.insert("Opportunity", values, raw=True)
        result.counts["Opportunity"] += 1


def _seed_tasks(org: SalesforceOrg, events: pd.DataFrame, accounts: pd.DataFrame, result: SeedResult) -> None:
    rows = events[events["kind"].isin(list(TASK_KINDS))].to_dict("records")
    for row in sorted(rows, key=lambda r: _utc(r["occurred_at"])):
        kind_type, subtype, subject = TASK_KINDS[row["kind"]]
        account_id = result.account_ids[row["account_key"]]
        owner = org.records["Account"][account_id]["OwnerId"]
        at = _utc(row["occurred_at"])
        org.insert(
            "Task",
            {
                "WhatId": account_id,
                "WhoId": result.contact_ids.get(_py(row.get("contact_email")) or ""),
                "Subject": subject,
                "ActivityDate": at.date(),
                "Status": "Completed",
                "Priority": "Normal",
                "Type": kind_type,
                "TaskSubtype": subtype,
                "CompletedDateTime": at,
                "OwnerId": owner,
                **_audit(at, at, owner),
            },
            raw=True,
        )
        result.counts["Task"] += 1
