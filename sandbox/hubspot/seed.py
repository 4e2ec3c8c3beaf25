"""Fill a sandbox portal from a canonical book of business, the way a SaaS company's HubSpot would look.

Only accounts whose `crm` is hubspot live here (all accounts when the frame has no `crm` column). A real portal keeps
the subscription facts in custom company properties (group "subscription"), the CSM as the record owner, contacts
with their primary company, support as tickets (opened -> closed, resolution in `time_to_close`) and seat and plan
moves as closed-won "existing business" deals. Record timestamps are the business times (never later than now), so
an incremental search after a date returns what changed after it, as it would on a portal with history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from sandbox.hubspot.schema import options
from sandbox.hubspot.state import HubSpotState, Record
from sandbox.hubspot.values import iso_ms

PLANS = ("starter", "team", "business", "enterprise")
PLAN_SEAT_PRICE = {"starter": 8.0, "team": 12.0, "business": 20.0, "enterprise": 32.0}  # $ per seat and month
SEGMENT_LABELS = {"smb": "SMB", "mid_market": "Mid-Market", "enterprise": "Enterprise"}
STAGE_LABELS = {"onboarding": "Onboarding", "adopted": "Adopted", "at_risk": "At Risk", "churned": "Churned"}
STATUS_LABELS = {"active": "Active", "churned": "Churned"}
CLOSED_STAGE = "4"
OPEN_STAGE = "1"

CUSTOM_GROUPS: dict[str, list[tuple[str, str]]] = {
    "companies": [("subscription", "Subscription")],
    "contacts": [("customer_success", "Customer success")],
    "deals": [("subscription", "Subscription")],
}
CUSTOM_PROPERTIES: dict[str, list[dict]] = {
    "companies": [
        {"name": "product_account_id", "label": "Product account ID", "type": "string", "fieldType": "text",
         "hasUniqueValue": True},
        {"name": "plan", "label": "Plan", "type": "enumeration", "fieldType": "select",
         "options": options(*[(p, p.title()) for p in PLANS])},
        {"name": "seats_purchased", "label": "Seats purchased", "type": "number", "fieldType": "number"},
        {"name": "seats_active", "label": "Seats active", "type": "number", "fieldType": "number"},
        {"name": "api_calls_limit", "label": "API calls per month (plan limit)", "type": "number",
         "fieldType": "number"},
        {"name": "api_calls_used", "label": "API calls, last 30 days", "type": "number", "fieldType": "number"},
        {"name": "storage_limit_gb", "label": "Storage limit (GB)", "type": "number", "fieldType": "number"},
        {"name": "storage_used_gb", "label": "Storage used (GB)", "type": "number", "fieldType": "number"},
        {"name": "customer_since", "label": "Customer since", "type": "date", "fieldType": "date"},
        {"name": "renewal_date", "label": "Renewal date", "type": "date", "fieldType": "date"},
        {"name": "churn_date", "label": "Churn date", "type": "date", "fieldType": "date"},
        {"name": "customer_segment", "label": "Segment", "type": "enumeration", "fieldType": "select",
         "options": options(*[(v, v) for v in SEGMENT_LABELS.values()])},
        {"name": "cs_stage", "label": "Customer success stage", "type": "enumeration", "fieldType": "select",
         "options": options(*[(v, v) for v in STAGE_LABELS.values()])},
        {"name": "customer_status", "label": "Customer status", "type": "enumeration", "fieldType": "select",
         "options": options(*[(v, v) for v in STATUS_LABELS.values()])},
        {"name": "roi_percent", "label": "ROI (%)", "type": "number", "fieldType": "number"},
        {"name": "goal_attainment", "label": "Success goals met (share)", "type": "number", "fieldType": "number"},
    ],
    "contacts": [
        {"name": "is_champion", "label": "Champion", "type": "bool", "fieldType": "booleancheckbox",
         "options": options(("true", "Yes"), ("false", "No"))},
        {"name": "is_executive_sponsor", "label": "Executive sponsor", "type": "bool", "fieldType": "booleancheckbox",
         "options": options(("true", "Yes"), ("false", "No"))},
        {"name": "last_product_login", "label": "Last product login", "type": "datetime", "fieldType": "date"},
    ],
    "deals": [
        {"name": "subscription_change", "label": "Subscription change", "type": "enumeration", "fieldType": "select",
         "options": options(("seats", "Seat change"), ("plan", "Plan change"))},
        {"name": "subscription_change_value", "label": "Change (seats, or +1 upgrade / -1 downgrade)",
         "type": "number", "fieldType": "number"},
        {"name": "new_plan", "label": "New plan", "type": "enumeration", "fieldType": "select",
         "options": options(*[(p, p.title()) for p in PLANS])},
    ],
}  # fmt: skip


@dataclass
class SeedResult:
    """What was created, keyed by the book's identities, so tests can compare a pull with the book."""

    companies: dict[str, str] = field(default_factory=dict)  # account key -> company id
    contacts: dict[str, str] = field(default_factory=dict)  # email -> contact id
    tickets: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)  # email -> owner id


def install_custom_properties(state: HubSpotState) -> None:
    """Create the portal's custom property groups and properties (idempotent)."""
    for object_type, groups in CUSTOM_GROUPS.items():
        for name, label in groups:
            if name not in state.groups[object_type]:
                state.create_group(object_type, {"name": name, "label": label})
    for object_type, props in CUSTOM_PROPERTIES.items():
        group = CUSTOM_GROUPS[object_type][0][0]
        for body in props:
            if state.prop(object_type, body["name"]) is None:
                state.create_property(object_type, {"groupName": group, **body})


def _ts(value) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _num(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(round(number, 6))


def _date(value) -> str | None:
    moment = _ts(value)
    return moment.date().isoformat() if moment else None


def _clamp(moment: datetime, now: datetime) -> datetime:
    return min(moment, now)


def _split_name(name: str) -> tuple[str, str]:
    parts = str(name).split(" ", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def seed_from_book(
    state: HubSpotState, accounts: pd.DataFrame, contacts: pd.DataFrame, events: pd.DataFrame | None = None
) -> SeedResult:
    """Create companies, owners, contacts, tickets and deals for the book's HubSpot accounts; returns their ids."""
    install_custom_properties(state)
    now = state.now()
    result = SeedResult()
    mine = accounts[accounts["crm"] == "hubspot"] if "crm" in accounts.columns else accounts
    keys = set(mine["key"])
    events = events if events is not None else pd.DataFrame(columns=["account_key", "kind", "occurred_at"])
    events = events[events["account_key"].isin(keys)]
    if "source" in events.columns:
        events = events[events["source"].isna() | (events["source"] == "hubspot")]

    for email in sorted({str(o) for o in mine.get("owner", pd.Series(dtype=object)).dropna()}):
        local = email.split("@", 1)[0].replace("_", ".").split(".")
        owner = state.add_owner(email, local[0].title(), " ".join(p.title() for p in local[1:]))
        result.owners[email] = owner["id"]

    deals_by_account = _deal_events(events)
    companies: dict[str, Record] = {}
    for row in mine.to_dict("records"):
        since = _ts(row.get("customer_since")) or now
        changes = [_ts(e["occurred_at"]) for e in deals_by_account.get(row["key"], [])]
        lastmod = _clamp(max([since, _ts(row.get("churned_at")) or since, *[c for c in changes if c]]), now)
        values = {
            "name": row.get("name"),
            "domain": row.get("domain"),
            "product_account_id": row["key"],
            "annualrevenue": _num(row.get("arr")),
            "plan": row.get("plan") if row.get("plan") in PLANS else None,
            "seats_purchased": _num(row.get("seats_purchased")),
            "seats_active": _num(row.get("seats_active")),
            "api_calls_limit": _num(row.get("api_limit")),
            "api_calls_used": _num(row.get("api_used")),
            "storage_limit_gb": _num(row.get("storage_limit_gb")),
            "storage_used_gb": _num(row.get("storage_used_gb")),
            "customer_since": _date(row.get("customer_since")),
            "renewal_date": _date(row.get("renewal_date")),
            "churn_date": _date(row.get("churned_at")),
            "customer_segment": SEGMENT_LABELS.get(str(row.get("segment"))),
            "cs_stage": STAGE_LABELS.get(str(row.get("lifecycle_stage"))),
            "customer_status": STATUS_LABELS.get(str(row.get("status"))),
            "roi_percent": _num(row.get("roi_pct")),
            "goal_attainment": _num(row.get("goal_attainment")),
            "hubspot_owner_id": result.owners.get(str(row.get("owner"))),
            "lifecyclestage": "customer",
            "createdate": iso_ms(since),
        }
        record = state.create("companies", _present(values), system=True, modified_at=lastmod)
        companies[row["key"]] = record
        result.companies[row["key"]] = record.id

    contact_ids: dict[str, str] = {}
    for row in contacts[contacts["account_key"].isin(keys)].to_dict("records"):
        company = companies[row["account_key"]]
        first, last = _split_name(row.get("name") or "")
        seen = _ts(row.get("last_seen"))
        created = company.created_at
        lastmod = _clamp(max(created, seen or created), now)
        values = {
            "email": str(row["email"]).lower(),
            "firstname": first or None,
            "lastname": last or None,
            "jobtitle": row.get("role"),
            "is_champion": bool(row.get("is_champion")),
            "is_executive_sponsor": bool(row.get("is_exec_sponsor")),
            "last_product_login": iso_ms(seen) if seen else None,
            "associatedcompanyid": company.id,
            "company": company.properties.get("name"),
            "lifecyclestage": "customer",
            "createdate": iso_ms(created),
        }
        if values["email"] in contact_ids:
            continue  # one person, one contact: HubSpot keeps emails unique
        record = state.create("contacts", _present(values), system=True, modified_at=lastmod)
        contact_ids[values["email"]] = record.id
    result.contacts = contact_ids

    for ticket in _pair_tickets(events):
        company = companies[ticket.account_key]
        values = {
            "subject": f"Support request from {company.properties.get('name')}",
            "content": "Imported from the demo book of business.",
            "hs_pipeline": "0",
            "hs_pipeline_stage": CLOSED_STAGE if ticket.closed else OPEN_STAGE,
            "hs_ticket_priority": "MEDIUM",
            "createdate": iso_ms(ticket.opened),
            "closed_date": iso_ms(ticket.closed) if ticket.closed else None,
        }
        links = [_assoc(company.id, 26)]
        if ticket.contact_email and ticket.contact_email in contact_ids:
            links.append(_assoc(contact_ids[ticket.contact_email], 16))
        lastmod = _clamp(ticket.closed or ticket.opened, now)
        result.tickets.append(state.create("tickets", _present(values), links, system=True, modified_at=lastmod).id)

    for key, rows in deals_by_account.items():
        company = companies[key]
        for event in rows:
            when = _ts(event["occurred_at"]) or now
            change = float(event.get("value") or 0.0)
            plan = company.properties.get("plan") or "team"
            if event["kind"] == "seat_change":
                name = f"{company.properties.get('name')}: {int(change):+d} seats"
                amount = _num(change * PLAN_SEAT_PRICE.get(plan, 12.0) * 12)
                extra = {"subscription_change": "seats"}
            else:
                new_plan = event.get("feature") if event.get("feature") in PLANS else None
                name = f"{company.properties.get('name')}: plan {'upgrade' if change > 0 else 'downgrade'}"
                amount = None
                extra = {"subscription_change": "plan", "new_plan": new_plan}
            values = {
                "dealname": name,
                "amount": amount,
                "pipeline": "default",
                "dealstage": "closedwon",
                "dealtype": "existingbusiness",
                "closedate": iso_ms(when),
                "createdate": iso_ms(when),
                "subscription_change_value": _num(change),
                "hubspot_owner_id": company.properties.get("hubspot_owner_id"),
                **extra,
            }
            record = state.create(
                "deals", _present(values), [_assoc(company.id, 5)], system=True, modified_at=_clamp(when, now)
            )
            result.deals.append(record.id)
    return result


def _present(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _assoc(to_id: str, type_id: int) -> dict:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _deal_events(events: pd.DataFrame) -> dict[str, list[dict]]:
    moves = events[events["kind"].isin(["seat_change", "plan_change"])]
    by_account: dict[str, list[dict]] = defaultdict(list)
    for row in moves.sort_values("occurred_at").to_dict("records"):
        by_account[row["account_key"]].append(row)
    return by_account


@dataclass
class _Ticket:
    account_key: str
    contact_email: str | None
    opened: datetime
    closed: datetime | None = None


def _pair_tickets(events: pd.DataFrame) -> list[_Ticket]:
    """One ticket per opened unit; each closed unit closes the open ticket of the same account and contact whose
    opening time best matches `closed - resolution hours`, or opens one backdated by those hours if none fits."""
    rows = events[events["kind"].isin(["ticket_opened", "ticket_closed"])]
    tickets: list[_Ticket] = []
    open_by: dict[tuple[str, str | None], list[_Ticket]] = defaultdict(list)
    records = rows.sort_values("occurred_at").to_dict("records")
    for row in records:
        if row["kind"] != "ticket_opened":
            continue
        email = _email(row.get("contact_email"))
        for _ in range(max(1, int(row.get("count") or 1))):
            ticket = _Ticket(row["account_key"], email, _ts(row["occurred_at"]) or datetime.now(UTC))
            tickets.append(ticket)
            open_by[(row["account_key"], email)].append(ticket)
    for row in records:
        if row["kind"] != "ticket_closed":
            continue
        email = _email(row.get("contact_email"))
        closed = _ts(row["occurred_at"]) or datetime.now(UTC)
        units = max(1, int(row.get("count") or 1))
        hours = float(row.get("value") or 0.0) / units
        for _ in range(units):
            target = closed - pd.Timedelta(hours=hours).to_pytimedelta()
            candidates = [t for t in open_by[(row["account_key"], email)] if t.closed is None and t.opened <= closed]
            if candidates:
                best = min(candidates, key=lambda t: abs((t.opened - target).total_seconds()))
                best.closed = closed
            else:
                tickets.append(_Ticket(row["account_key"], email, target, closed))
    return sorted(tickets, key=lambda t: t.opened)


def _email(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).lower()
