"""An in-memory Intercom workspace: companies, contacts, conversations, data events, data attributes, messages.

Seeded from a canonical book of business (accounts / contacts / events DataFrames, e.g. `app.demo.book.Book`),
the way a real stack looks: every account is an Intercom company (`company_id` = the account key), every contact
a user attached to it, and the book's Intercom-sourced events become what Intercom holds for them:

* product usage (logins, feature use, API calls, help-centre views, surveys, milestones, exports) becomes data
  events on the contact. `event_name` is the canonical kind, or the feature / milestone key for `feature_used` /
  `milestone` events (so Intercom's own de-duplication on contact + name + second never merges two features);
  metadata carries `count`, `value` and `feature`. An account-level event (no contact in the book) is recorded on
  the company's first contact with metadata `scope: account`, since Intercom events always belong to a person.
* support-like events (tickets, escalations, cancellation inquiries, competitor mentions) become
  customer-initiated conversations whose `Topic` conversation attribute says which.

Everything the HTTP layer (app.py) serves goes through the methods here, under one lock, so the threaded
server never sees a half-applied write.

The workspace's state and record methods live here; seeding (seed.py), listing and search (listing.py) and data
events (events.py) are mixins of it, and the shared vocabulary is in values.py.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.intercom.events import EventsApi, EventStore
from sandbox.intercom.listing import Listing, Scroll
from sandbox.intercom.replies import Replies
from sandbox.intercom.seed import Seeding
from sandbox.intercom.values import (
    APP_ID,
    BUILTIN_ATTRIBUTES,
    DATA_TYPES,
    DEFAULT_TOKEN,
    SEED_ATTRIBUTES,
    ApiError,
    fits,
    hex_id,
    int_field,
)


@dataclass
class Workspace(Seeding, Listing, EventsApi, Replies):
    """Intercom's state for one app. `clock` drives record timestamps and the 90-day event list window;
    `event_list_days=None` lifts that window (Intercom lists only events younger than 90 days)."""

    clock: Callable[[], float] = time.time
    tokens: set[str] = field(default_factory=lambda: {DEFAULT_TOKEN})
    event_list_days: int | None = 90
    scroll_ttl_seconds: float = 60.0
    companies: dict[str, dict] = field(default_factory=dict)
    contacts: dict[str, dict] = field(default_factory=dict)
    conversations: dict[str, dict] = field(default_factory=dict)
    data_attributes: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    events: EventStore = field(default_factory=EventStore)
    versions_seen: Counter = field(default_factory=Counter)
    unplaced_events: int = 0  # book events that had no contact to live on (account without contacts)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self._company_by_key: dict[str, str] = {}
        self._contact_by_email: dict[str, str] = {}
        self._contact_by_external: dict[str, str] = {}
        self._contact_index: dict[str, int] = {}  # contact id -> EventStore index
        self._company_contacts: dict[str, list[str]] = {}
        self._seq: dict[str, int] = {}  # record id -> insertion order (search cursors page on it)
        self._next_seq = 0
        self._plans: dict[str, str] = {}
        self._scroll: Scroll | None = None
        self._snapshots: dict[str, list[str]] = {}  # search cursor walks: snapshot id -> hit ids
        self._next_conversation = 1000
        self._next_message = 5000
        self._next_attribute = 1
        self.admins = [
            {
                "type": "admin", "id": "991267001", "name": "CSE Sandbox Admin", "email": "admin@cse-sandbox.example",
                "job_title": "Customer Success", "away_mode_enabled": False, "away_mode_reassign": False,
                "has_inbox_seat": True, "team_ids": [],
            }
        ]  # fmt: skip
        if not self.data_attributes:
            for model, name, data_type, label in BUILTIN_ATTRIBUTES:
                self.data_attributes.append(self._attribute(model, name, data_type, label=label, custom=False))
            for model, name, data_type, _ in SEED_ATTRIBUTES:
                self.data_attributes.append(self._attribute(model, name, data_type))

    def now(self) -> int:
        return int(self.clock())

    # --- records -------------------------------------------------------------------------------------------------

    def _sequence(self, record_id: str) -> None:
        self._seq[record_id] = self._next_seq
        self._next_seq += 1

    def add_company(self, fields: Mapping[str, Any], *, created_at: int | None = None, updated_at: int | None = None):
        now = self.now()
        with self.lock:
            company_id = str(fields["company_id"])
            if company_id in self._company_by_key:
                raise ApiError(400, "parameter_invalid", f"company_id {company_id} already exists", "company_id")
            record_id = hex_id("6a", len(self.companies) + 1)
            created = now if created_at is None else created_at
            company = {
                "type": "company", "id": record_id, "company_id": company_id, "app_id": APP_ID, "name": "",
                "remote_created_at": created, "created_at": created, "updated_at": created if updated_at is None
                else updated_at, "last_request_at": created, "monthly_spend": 0, "session_count": 0,
                "user_count": 0, "size": 0, "website": "", "industry": "", "plan": {}, "custom_attributes": {},
                "tags": {"type": "tag.list", "tags": []}, "segments": {"type": "segment.list", "segments": []},
            }  # fmt: skip
            self._apply_company_fields(company, fields)
            self.companies[record_id] = company
            self._company_by_key[company_id] = record_id
            self._company_contacts[record_id] = []
            self._sequence(record_id)
            return company

    def _apply_company_fields(self, company: dict, fields: Mapping[str, Any]) -> None:
        for name in ("name", "website", "industry"):
            if fields.get(name) is not None:
                company[name] = str(fields[name])
        for name in ("remote_created_at", "size", "monthly_spend"):
            if fields.get(name) is not None:
                company[name] = int_field(fields[name], name)
        if fields.get("plan"):
            plan = str(fields["plan"])
            plan_id = self._plans.setdefault(plan, str(269315 + len(self._plans)))
            company["plan"] = {"type": "plan", "id": plan_id, "name": plan}
        if fields.get("custom_attributes") is not None:
            company["custom_attributes"] = {
                **company["custom_attributes"],
                **self._checked_custom("company", fields["custom_attributes"]),
            }
            company["custom_attributes"] = {k: v for k, v in company["custom_attributes"].items() if v is not None}

    def upsert_company(self, fields: Mapping[str, Any]) -> dict:
        """POST /companies: look up by company_id, update if found, create otherwise."""
        with self.lock:
            if not fields.get("company_id"):
                raise ApiError(400, "parameter_invalid", "company_id is required", "company_id")
            record_id = self._company_by_key.get(str(fields["company_id"]))
            if record_id is None:
                return self.add_company(fields)
            return self.update_company(record_id, fields)

    def update_company(self, record_id: str, fields: Mapping[str, Any]) -> dict:
        with self.lock:
            company = self.get_company(record_id)
            self._apply_company_fields(company, fields)
            company["updated_at"] = self.now()
            return company

    def get_company(self, record_id: str) -> dict:
        company = self.companies.get(record_id)
        if company is None:
            raise ApiError(404, "company_not_found", "Company Not Found")
        return company

    def company_by_key(self, company_id: str) -> dict | None:
        record_id = self._company_by_key.get(company_id)
        return self.companies[record_id] if record_id else None

    def render_company(self, company: Mapping[str, Any]) -> dict:
        contacts = self._company_contacts.get(company["id"], [])
        seen = [self.contacts[c]["last_seen_at"] for c in contacts if self.contacts[c]["last_seen_at"]]
        return {**company, "user_count": len(contacts), "last_request_at": max(seen, default=company["created_at"])}

    def add_contact(self, fields: Mapping[str, Any], *, created_at: int | None = None, updated_at: int | None = None):
        now = self.now()
        with self.lock:
            email = str(fields.get("email") or "").strip()
            external_id = fields.get("external_id")
            if not email and not external_id:
                raise ApiError(400, "parameter_invalid", "email or external_id is required", "email")
            if email and email.lower() in self._contact_by_email:
                raise ApiError(409, "conflict", "A contact matching those details already exists with id=" +
                               self._contact_by_email[email.lower()])  # fmt: skip
            if external_id is None and email:
                external_id = "user-" + hashlib.sha1(email.lower().encode()).hexdigest()[:12]
            record_id = hex_id("5c", len(self.contacts) + 1)
            created = now if created_at is None else created_at
            contact = {
                "type": "contact", "id": record_id, "workspace_id": APP_ID, "external_id": external_id,
                "role": fields.get("role") or "user", "email": email, "email_domain": email.split("@")[-1]
                if "@" in email else "", "phone": None, "formatted_phone": None, "name": fields.get("name"),
                "owner_id": None, "has_hard_bounced": False, "marked_email_as_spam": False,
                "unsubscribed_from_emails": False, "created_at": created,
                "updated_at": created if updated_at is None else updated_at,
                "signed_up_at": fields.get("signed_up_at"), "last_seen_at": fields.get("last_seen_at"),
                "last_replied_at": None, "last_contacted_at": None, "last_email_opened_at": None,
                "last_email_clicked_at": None, "language_override": None, "browser": None, "browser_version": None,
                "browser_language": None, "os": None, "android_app_name": None, "android_app_version": None,
                "android_device": None, "android_os_version": None, "android_sdk_version": None,
                "android_last_seen_at": None, "ios_app_name": None, "ios_app_version": None, "ios_device": None,
                "ios_os_version": None, "ios_sdk_version": None, "ios_last_seen_at": None,
                "custom_attributes": self._checked_custom("contact", fields.get("custom_attributes") or {}),
                "avatar": None, "location": {"type": "location", "country": None, "region": None, "city": None},
                "social_profiles": {"type": "list", "data": []},
            }  # fmt: skip
            self.contacts[record_id] = contact
            if email:
                self._contact_by_email[email.lower()] = record_id
            if external_id:
                self._contact_by_external[str(external_id)] = record_id
            self._contact_index[record_id] = len(self._contact_index)
            self._sequence(record_id)
            return contact

    def update_contact(self, record_id: str, fields: Mapping[str, Any]) -> dict:
        with self.lock:
            contact = self.get_contact(record_id)
            for name in ("name", "phone", "role"):
                if name in fields:
                    contact[name] = fields[name]
            for name in ("last_seen_at", "signed_up_at"):
                if name in fields:
                    contact[name] = None if fields[name] is None else int_field(fields[name], name)
            if "unsubscribed_from_emails" in fields:
                if not isinstance(fields["unsubscribed_from_emails"], bool):
                    raise ApiError(400, "parameter_invalid", "unsubscribed_from_emails must be a boolean",
                                   "unsubscribed_from_emails")  # fmt: skip
                contact["unsubscribed_from_emails"] = fields["unsubscribed_from_emails"]
            if fields.get("email"):
                email = str(fields["email"])
                self._contact_by_email.pop(str(contact["email"]).lower(), None)
                contact["email"], contact["email_domain"] = email, email.split("@")[-1]
                self._contact_by_email[email.lower()] = record_id
            if fields.get("custom_attributes") is not None:
                checked = self._checked_custom("contact", fields["custom_attributes"])
                merged = {**contact["custom_attributes"], **checked}
                contact["custom_attributes"] = {k: v for k, v in merged.items() if v is not None}
            contact["updated_at"] = self.now()
            return contact

    def get_contact(self, record_id: str) -> dict:
        contact = self.contacts.get(record_id)
        if contact is None:
            raise ApiError(404, "not_found", "User Not Found")
        return contact

    def find_contact(self, *, id: str | None = None, user_id: str | None = None, email: str | None = None):
        """The contact an events / messages request names by Intercom id, external user_id or email."""
        record_id = None
        if id:
            record_id = id if id in self.contacts else None
        elif user_id:
            record_id = self._contact_by_external.get(str(user_id))
        elif email:
            record_id = self._contact_by_email.get(str(email).lower())
        if record_id is None:
            raise ApiError(404, "not_found", "User Not Found")
        return self.contacts[record_id]

    def attach_company(self, contact_id: str, company_record_id: str) -> dict:
        with self.lock:
            self.get_contact(contact_id)
            self.get_company(company_record_id)
            self._attach(contact_id, company_record_id, touch=True)
            return self.render_company(self.companies[company_record_id])

    def _attach(self, contact_id: str, company_record_id: str, *, touch: bool) -> None:
        members = self._company_contacts.setdefault(company_record_id, [])
        if contact_id not in members:
            members.append(contact_id)
            self.contacts[contact_id].setdefault("_companies", []).append(company_record_id)
            if touch:
                self.contacts[contact_id]["updated_at"] = self.now()

    def contact_companies(self, contact_id: str) -> list[str]:
        return list(self.contacts[contact_id].get("_companies", []))

    def render_contact(self, contact: Mapping[str, Any]) -> dict:
        """A contact as the API shows it: companies (at most 10 listed), tags and notes as link lists."""
        record_id = contact["id"]
        companies = self.contact_companies(record_id)
        out = {k: v for k, v in contact.items() if not k.startswith("_")}
        out["tags"] = {"type": "list", "data": [], "url": f"/contacts/{record_id}/tags", "total_count": 0,
                       "has_more": False}  # fmt: skip
        out["notes"] = {"type": "list", "data": [], "url": f"/contacts/{record_id}/notes", "total_count": 0,
                        "has_more": False}  # fmt: skip
        out["companies"] = {
            "type": "list",
            "data": [{"id": c, "type": "company", "url": f"/companies/{c}"} for c in companies[:10]],
            "url": f"/contacts/{record_id}/companies",
            "total_count": len(companies),
            "has_more": len(companies) > 10,
        }
        return out

    def add_conversation(self, contact_id: str, body: str, created_at: int | None = None, topic: str | None = None):
        with self.lock:
            contact = self.get_contact(contact_id)
            created = self.now() if created_at is None else created_at
            record_id = str(self._next_conversation)
            self._next_conversation += 1
            conversation = {
                "type": "conversation", "id": record_id, "title": None, "created_at": created, "updated_at": created,
                "waiting_since": None, "snoozed_until": None, "open": False, "state": "closed", "read": True,
                "priority": "not_priority", "admin_assignee_id": None, "team_assignee_id": None,
                "tags": {"type": "tag.list", "tags": []},
                "source": {
                    "type": "conversation", "id": str(400_000_000 + int(record_id)),
                    "delivered_as": "customer_initiated", "subject": "", "body": body,
                    "author": {"type": "user", "id": contact["id"], "name": contact.get("name") or "",
                               "email": contact.get("email") or ""},
                    "attachments": [], "url": None, "redacted": False,
                },
                "contacts": {"type": "contact.list", "contacts": [
                    {"type": "contact", "id": contact["id"], "external_id": contact.get("external_id")}]},
                "teammates": {"type": "admin.list", "teammates": []},
                "custom_attributes": {"Topic": topic} if topic else {},
                "topics": {"type": "topic.list", "topics": [], "total_count": 0},
                "ai_agent_participated": False,
            }  # fmt: skip
            self.conversations[record_id] = conversation
            self._sequence(record_id)
            return conversation

    # --- custom attributes ---------------------------------------------------------------------------------------

    def _attribute(self, model: str, name: str, data_type: str, *, label: str | None = None, custom: bool = True):
        now = self.now()
        attribute = {
            "type": "data_attribute", "name": name, "full_name": f"custom_attributes.{name}" if custom else name,
            "label": label or name, "description": "" if custom else f"The {label or name}", "data_type": data_type,
            "api_writable": True, "messenger_writable": False, "ui_writable": custom, "custom": custom,
            "archived": False, "model": model,
        }  # fmt: skip
        if custom:
            attribute.update(id=self._next_attribute, created_at=now, updated_at=now, admin_id=self.admins[0]["id"])
            self._next_attribute += 1
        return attribute

    def custom_type(self, model: str, name: str) -> str | None:
        for attribute in self.data_attributes:
            if attribute["custom"] and attribute["model"] == model and attribute["name"] == name:
                return attribute["data_type"]
        return None

    def _checked_custom(self, model: str, values: Mapping[str, Any]) -> dict:
        """Intercom refuses custom attributes that were never created, and values of the wrong type."""
        if not isinstance(values, Mapping):
            raise ApiError(400, "parameter_invalid", "custom_attributes must be an object", "custom_attributes")
        out = {}
        for name, value in values.items():
            data_type = self.custom_type(model, name)
            if data_type is None:
                raise ApiError(400, "parameter_not_found", f"Custom attribute '{name}' does not exist", name)
            if value is not None and not fits(value, data_type):
                raise ApiError(400, "parameter_invalid", f"Custom attribute '{name}' must be a {data_type}", name)
            out[name] = value
        return out

    def create_data_attribute(self, body: Mapping[str, Any]) -> dict:
        with self.lock:
            name, model, data_type = body.get("name"), body.get("model"), body.get("data_type")
            if model not in ("contact", "company"):
                raise ApiError(400, "parameter_invalid", "The Data Attribute model field must be either contact or "
                               "company", "model")  # fmt: skip
            if data_type == "datetime":
                data_type = "date"
            if data_type not in DATA_TYPES:
                raise ApiError(400, "parameter_invalid", "Data Type isn't an option", "data_type")
            if not isinstance(name, str) or not name.strip() or any(ch in name for ch in ".[]$\"'"):
                raise ApiError(400, "parameter_invalid", "Your name for this attribute must only contain "
                               "alphanumeric characters, currency symbols, and hyphens", "name")  # fmt: skip
            if any(a["model"] == model and a["name"].lower() == name.lower() for a in self.data_attributes):
                raise ApiError(400, "parameter_invalid", f"You already have '{name}' in your {model} data. To save "
                               "this as new company data, use a different name.", "name")  # fmt: skip
            attribute = self._attribute(model, name, data_type)
            attribute["messenger_writable"] = bool(body.get("messenger_writable", False))
            if body.get("options"):
                attribute["options"] = [o["value"] if isinstance(o, Mapping) else str(o) for o in body["options"]]
            self.data_attributes.append(attribute)
            return attribute

    # --- listing and search --------------------------------------------------------------------------------------

    # --- messages ------------------------------------------------------------------------------------------------

    def create_message(self, body: Any) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "parameter_invalid", "body must be an object")
        message_type = body.get("message_type")
        if message_type not in ("inapp", "in_app", "email"):
            raise ApiError(400, "parameter_invalid", "message_type must be inapp or email", "message_type")
        if not body.get("body"):
            raise ApiError(400, "parameter_invalid", "Body is required", "body")
        if message_type == "email" and not body.get("subject"):
            raise ApiError(422, "parameter_not_found", "No subject supplied for email message", "subject")
        sender, recipient = body.get("from") or {}, body.get("to") or {}
        if sender.get("type") != "admin" or str(sender.get("id")) not in {a["id"] for a in self.admins}:
            raise ApiError(404, "admin_not_found", "Admin not found", "from")
        if recipient.get("type") not in ("user", "lead", "contact"):
            raise ApiError(400, "parameter_invalid", "to.type must be user or lead", "to")
        with self.lock:
            contact = self.find_contact(id=str(recipient.get("id") or ""))
            record_id = str(self._next_message)
            self._next_message += 1
            # No conversation exists until the contact replies; its id is reserved now, as the API reports it.
            conversation_id = str(self._next_conversation)
            self._next_conversation += 1
            message = {
                "type": "admin_message", "id": record_id, "created_at": int(body.get("created_at") or self.now()),
                "subject": body.get("subject") or "", "body": body["body"],
                "message_type": "email" if message_type == "email" else "inapp", "conversation_id": conversation_id,
            }  # fmt: skip
            self.messages.append({**message, "to": contact["id"], "from": str(sender["id"])})
            return message


# --- helpers ----------------------------------------------------------------------------------------------------
