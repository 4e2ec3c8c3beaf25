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
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from sandbox.intercom.search import (
    CONTACT_FIELDS,
    CONVERSATION_FIELDS,
    QueryError,
    SearchDialect,
    matches,
    validate,
)

APP_ID = "cse0sandbox"
DEFAULT_TOKEN = "sandbox-token"
SEARCH_DEFAULT_PER_PAGE = {"contacts": 50, "conversations": 20}
SEARCH_MAX_PER_PAGE = 150
MAX_SEARCH_SNAPSHOTS = 32  # cursor walks in flight
COMPANY_LIST_DEFAULT_PER_PAGE = 15
COMPANY_LIST_MAX_PER_PAGE = 60
COMPANY_LIST_MAX_RESULTS = 10_000  # beyond this the list endpoint refuses; the scroll API is the way
COMPANY_SCROLL_PAGE = 100
EVENTS_DEFAULT_PER_PAGE = 15
EVENTS_MAX_PER_PAGE = 100  # not documented by Intercom; a cap keeps the paging path exercised
EVENT_METADATA_MAX_KEYS = 10

# Canonical kinds that live in Intercom as conversations, and the `Topic` conversation attribute value of each.
CONVERSATION_TOPICS: dict[str, str] = {
    "ticket_opened": "Question",
    "escalation": "Escalation",
    "cancellation_inquiry": "Cancellation",
    "competitor_mention": "Competitor",
}
NAMED_BY_FEATURE = ("feature_used", "milestone")  # kinds whose event_name is the feature / milestone key

# Custom data attributes the seed sets: (model, name, data_type, book column).
SEED_ATTRIBUTES: tuple[tuple[str, str, str, str], ...] = (
    ("company", "seats", "integer", "seats_purchased"),
    ("company", "active_seats", "integer", "seats_active"),
    ("company", "api_limit", "integer", "api_limit"),
    ("company", "api_used", "integer", "api_used"),
    ("company", "storage_limit_gb", "float", "storage_limit_gb"),
    ("company", "storage_used_gb", "float", "storage_used_gb"),
    ("company", "status", "string", "status"),
    ("company", "churned_at", "date", "churned_at"),
    ("contact", "job_role", "string", "role"),
    ("contact", "champion", "boolean", "is_champion"),
    ("contact", "exec_sponsor", "boolean", "is_exec_sponsor"),
    ("conversation", "Topic", "string", ""),
)
BUILTIN_ATTRIBUTES: tuple[tuple[str, str, str, str], ...] = (
    # (model, name, data_type, label) - the standard attributes GET /data_attributes lists first
    ("company", "name", "string", "Company name"),
    ("company", "company_id", "string", "Company ID"),
    ("company", "last_request_at", "date", "Company last seen"),
    ("company", "remote_created_at", "date", "Company created at"),
    ("company", "user_count", "integer", "People"),
    ("company", "session_count", "integer", "Company web sessions"),
    ("company", "monthly_spend", "float", "Monthly Spend"),
    ("company", "plan", "string", "Plan"),
    ("company", "size", "integer", "Company size"),
    ("company", "website", "string", "Company website"),
    ("company", "industry", "string", "Company industry"),
    ("contact", "name", "string", "Name"),
    ("contact", "email", "string", "Email"),
    ("contact", "external_id", "string", "User ID"),
    ("contact", "role", "string", "Role"),
    ("contact", "signed_up_at", "date", "Signed up"),
    ("contact", "last_seen_at", "date", "Last seen"),
    ("contact", "created_at", "date", "First seen"),
    ("contact", "updated_at", "date", "Last updated"),
    ("contact", "phone", "string", "Phone"),
    ("conversation", "state", "string", "State"),
    ("conversation", "priority", "string", "Priority"),
)
DATA_TYPES = ("string", "integer", "float", "boolean", "date")


class ApiError(Exception):
    """An error the API answers with Intercom's error list: HTTP status, error code, message, optional field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


# --- conversions from book frames ---------------------------------------------------------------------------


def epoch(value: Any) -> int | None:
    """Seconds since the epoch for a date / datetime / Timestamp / ISO string / number; naive values are UTC."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise TypeError(f"not a time: {value!r}")
    if isinstance(value, int | np.integer | float | np.floating):
        return int(value)
    if value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())


def _epochs(values: pd.Series) -> np.ndarray:
    """Vector form of `epoch` (float, NaN where missing) for a datetime-like column."""
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    seconds = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    return np.floor(seconds.to_numpy(dtype=float, na_value=np.nan))


def _clean(value: Any) -> Any:
    """Book cell → JSON value (numpy scalars unwrapped, NaN/NaT → None)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return epoch(value)
    return value


def _hex_id(prefix: str, n: int) -> str:
    """A 24-character hex id like Intercom's, stable for a given sequence number."""
    return f"{prefix}{n:0{24 - len(prefix)}x}"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- data events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataEvent:
    """One data event; `ms` orders events (Intercom keeps milliseconds and pages on them)."""

    ms: int
    created_at: int
    event_name: str
    metadata: Mapping[str, Any]


class EventStore:
    """Data events per contact: the seeded bulk as sorted columns (cheap for a full demo book), plus a list of
    events submitted through the API."""

    def __init__(self) -> None:
        self._contact: np.ndarray = np.empty(0, np.int64)
        self._ms = np.empty(0, np.int64)
        self._name = np.empty(0, np.int32)
        self._count = np.empty(0, np.int64)
        self._value = np.empty(0, np.float64)
        self._feature = np.empty(0, np.int32)
        self._scope = np.empty(0, bool)
        self._names: list[str] = []
        self._features: list[str] = []
        self._posted: dict[int, list[DataEvent]] = {}

    def load(self, frame: pd.DataFrame) -> None:
        """Columns: contact (int index), ms, event_name, count, value, feature (str|None), scope_account."""
        frame = frame.sort_values(["contact", "ms"], kind="stable")
        names = pd.Categorical(frame["event_name"])
        features = pd.Categorical(frame["feature"])
        self._contact = frame["contact"].to_numpy(np.int64)
        self._ms = frame["ms"].to_numpy(np.int64)
        self._name, self._names = names.codes.astype(np.int32), [str(c) for c in names.categories]
        self._feature, self._features = features.codes.astype(np.int32), [str(c) for c in features.categories]
        self._count = frame["count"].to_numpy(np.int64)
        self._value = frame["value"].to_numpy(np.float64)
        self._scope = frame["scope_account"].to_numpy(bool)

    def __len__(self) -> int:
        return len(self._ms) + sum(len(v) for v in self._posted.values())

    def for_contact(
        self, contact: int, after_ms: int | None = None, before_ms: int | None = None, newest: int | None = None
    ) -> list[DataEvent]:
        """Events of one contact, oldest first: only those with after_ms < ms < before_ms, and only the `newest`
        few of them when asked (a listing page needs no more, and building the rest is what costs)."""
        lo, hi = (int(i) for i in np.searchsorted(self._contact, [contact, contact + 1]))
        if after_ms is not None:
            lo += int(np.searchsorted(self._ms[lo:hi], after_ms, side="right"))
        if before_ms is not None:
            hi = lo + int(np.searchsorted(self._ms[lo:hi], before_ms, side="left"))
        if newest is not None:
            lo = max(lo, hi - newest)
        out = [self._event(i) for i in range(lo, hi)]
        posted = [
            e
            for e in self._posted.get(contact, ())
            if (after_ms is None or e.ms > after_ms) and (before_ms is None or e.ms < before_ms)
        ]
        if posted:
            out = sorted([*out, *posted], key=lambda e: e.ms)
        return out[-newest:] if newest is not None else out

    def _event(self, i: int) -> DataEvent:
        metadata: dict[str, Any] = {"count": int(self._count[i])}
        if not math.isnan(self._value[i]):
            metadata["value"] = float(self._value[i])
        if self._feature[i] >= 0:
            metadata["feature"] = self._features[self._feature[i]]
        if self._scope[i]:
            metadata["scope"] = "account"
        ms = int(self._ms[i])
        return DataEvent(ms, ms // 1000, self._names[self._name[i]], metadata)

    def add(self, contact: int, event_name: str, created_at: int, metadata: Mapping[str, Any]) -> bool:
        """Record a submitted event; False if Intercom would drop it as a duplicate (same name and second)."""
        existing = self.for_contact(contact)
        if any(e.event_name == event_name and e.created_at == created_at for e in existing):
            return False
        same_second = sum(1 for e in existing if e.created_at == created_at)
        event = DataEvent(created_at * 1000 + same_second, created_at, event_name, dict(metadata))
        self._posted.setdefault(contact, []).append(event)
        return True


# --- the workspace ----------------------------------------------------------------------------------------------


@dataclass
class _Scroll:
    param: str
    ids: list[str]
    position: int
    last_used: float


@dataclass
class Workspace:
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
        self._scroll: _Scroll | None = None
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

    # --- seeding -------------------------------------------------------------------------------------------------

    @classmethod
    def from_book(cls, book: Any, **kwargs: Any) -> Workspace:
        """A workspace holding `book` (anything with `accounts`, `contacts`, `events` frames)."""
        return cls.from_frames(book.accounts, book.contacts, book.events, **kwargs)

    @classmethod
    def from_frames(
        cls,
        accounts: pd.DataFrame,
        contacts: pd.DataFrame,
        events: pd.DataFrame | None = None,
        *,
        seeded_at: int | None = None,
        **kwargs: Any,
    ) -> Workspace:
        """Seed from canonical frames; records carry `updated_at = seeded_at` (default: now) as their last change."""
        workspace = cls(**kwargs)
        workspace.seed(accounts, contacts, events, seeded_at=seeded_at)
        return workspace

    def seed(
        self,
        accounts: pd.DataFrame,
        contacts: pd.DataFrame,
        events: pd.DataFrame | None = None,
        *,
        seeded_at: int | None = None,
    ) -> None:
        with self.lock:
            stamp = self.now() if seeded_at is None else int(seeded_at)
            for row in accounts.to_dict("records"):
                self._seed_company(row, stamp)
            for row in contacts.to_dict("records"):
                self._seed_contact(row, stamp)
            if events is not None and len(events):
                self._seed_events(events)

    def _seed_company(self, row: Mapping[str, Any], stamp: int) -> None:
        since = epoch(row.get("customer_since")) or stamp
        arr = _clean(row.get("arr"))
        custom = {}
        for model, name, data_type, column in SEED_ATTRIBUTES:
            value = _clean(row.get(column)) if model == "company" else None
            if value is not None:
                custom[name] = _coerce_seed(value, data_type)
        plan = _clean(row.get("plan"))
        self.add_company(
            {
                "company_id": str(row["key"]),
                "name": str(row.get("name") or row["key"]),
                "website": f"https://{row['domain']}" if _clean(row.get("domain")) else "",
                "remote_created_at": since,
                "monthly_spend": round(arr / 12) if arr is not None else 0,
                "plan": str(plan) if plan else None,
                "custom_attributes": custom,
            },
            created_at=since,
            updated_at=stamp,
        )

    def _seed_contact(self, row: Mapping[str, Any], stamp: int) -> None:
        company = self._company_by_key.get(str(row["account_key"]))
        created = self.companies[company]["created_at"] if company else stamp
        custom = {}
        for model, name, data_type, column in SEED_ATTRIBUTES:
            value = _clean(row.get(column)) if model == "contact" else None
            if value is not None:
                custom[name] = _coerce_seed(value, data_type)
        contact = self.add_contact(
            {
                "email": str(row["email"]),
                "name": _clean(row.get("name")),
                "last_seen_at": _clean(row.get("last_seen")),
                "signed_up_at": created,
                "custom_attributes": custom,
            },
            created_at=created,
            updated_at=stamp,
        )
        if company:
            self._attach(contact["id"], company, touch=False)

    def _seed_events(self, events: pd.DataFrame) -> None:
        frame = events[events["source"] == "intercom"].copy()
        frame["created_at"] = _epochs(frame["occurred_at"])
        emails = frame["contact_email"].astype(object).where(frame["contact_email"].notna(), None)
        frame["contact_id"] = [self._contact_by_email.get(str(e).lower()) if e else None for e in emails]
        frame["scope_account"] = frame["contact_id"].isna()
        first_contact = {
            key: self._company_contacts[cid][0]
            for key, cid in self._company_by_key.items()
            if self._company_contacts.get(cid)
        }
        missing = frame["contact_id"].isna()
        frame.loc[missing, "contact_id"] = frame.loc[missing, "account_key"].map(first_contact)
        placed = frame["contact_id"].notna() & np.isfinite(frame["created_at"])
        self.unplaced_events += int((~placed).sum())
        frame = frame[placed]

        talk = frame["kind"].isin(list(CONVERSATION_TOPICS))
        for row in frame[talk].sort_values("created_at").to_dict("records"):
            self._seed_conversation(row)

        usage = frame[~talk].copy()
        usage["contact"] = usage["contact_id"].map(self._contact_index).astype(np.int64)
        usage["created_at"] = usage["created_at"].astype(np.int64)
        feature = usage["feature"].astype(object).where(usage["feature"].notna(), None)
        named = usage["kind"].isin(NAMED_BY_FEATURE) & feature.notna()
        usage["event_name"] = np.where(named, feature, usage["kind"]).astype(object)
        usage["feature"] = feature
        usage = usage.sort_values(["contact", "created_at"], kind="stable")
        usage["ms"] = usage["created_at"] * 1000 + usage.groupby(["contact", "created_at"]).cumcount()
        usage["count"] = usage["count"].fillna(1).astype(np.int64)
        usage["value"] = usage["value"].astype(float)
        self.events.load(usage[["contact", "ms", "event_name", "count", "value", "feature", "scope_account"]])

        # Company rollups Intercom keeps: web sessions and last request (the latest contact activity).
        logins = usage[usage["kind"] == "login"]
        sessions = logins.groupby("account_key")["count"].sum()
        for key, total in sessions.items():
            self.companies[self._company_by_key[key]]["session_count"] = int(total)

    def _seed_conversation(self, row: Mapping[str, Any]) -> None:
        contact = self.contacts[row["contact_id"]]
        created = int(row["created_at"])
        topic = CONVERSATION_TOPICS[row["kind"]]
        self.add_conversation(contact["id"], f"<p>{topic}: {row['kind'].replace('_', ' ')}</p>", created, topic)

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
            record_id = _hex_id("6a", len(self.companies) + 1)
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
                company[name] = _int_field(fields[name], name)
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
            record_id = _hex_id("5c", len(self.contacts) + 1)
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
                    contact[name] = None if fields[name] is None else _int_field(fields[name], name)
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
            if value is not None and not _fits(value, data_type):
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

    def list_companies(self, page: int, per_page: int, order: str) -> dict:
        if per_page < 1 or per_page > COMPANY_LIST_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be between 1 and {COMPANY_LIST_MAX_PER_PAGE}",
                           "per_page")  # fmt: skip
        if page < 1 or (page - 1) * per_page >= COMPANY_LIST_MAX_RESULTS:
            raise ApiError(400, "parameter_invalid", "page is out of range; use the scroll API beyond 10,000 "
                           "companies", "page")  # fmt: skip
        with self.lock:
            # The list leaves out companies without users, sorted by last_request_at (descending by default).
            rendered = [self.render_company(c) for c in self.companies.values() if self._company_contacts[c["id"]]]
            rendered.sort(key=lambda c: (c["last_request_at"], self._seq[c["id"]]), reverse=order != "asc")
            total = len(rendered)
            data = rendered[(page - 1) * per_page : page * per_page]
        pages = {"type": "pages", "page": page, "per_page": per_page, "total_pages": math.ceil(total / per_page)}
        return {"type": "list", "data": data, "pages": pages, "total_count": total}

    def scroll_companies(self, param: str | None) -> dict:
        """One scroll per app; it expires after `scroll_ttl_seconds` unused and closes on its empty last page."""
        with self.lock:
            now = self.clock()
            if self._scroll and now - self._scroll.last_used > self.scroll_ttl_seconds:
                self._scroll = None
            if param is None:
                if self._scroll is not None:
                    raise ApiError(400, "scroll_exists", "scroll already exists for this app")
                ids = sorted(self.companies, key=self._seq.__getitem__)
                self._scroll = _Scroll(str(uuid.uuid4()), ids, 0, now)
            elif self._scroll is None or self._scroll.param != param:
                raise ApiError(404, "not_found", "scroll parameter not found; it may have expired")
            scroll = self._scroll
            chunk = scroll.ids[scroll.position : scroll.position + COMPANY_SCROLL_PAGE]
            scroll.position += len(chunk)
            scroll.last_used = now
            if not chunk:
                self._scroll = None  # the end: the param expires
            data = [self.render_company(self.companies[i]) for i in chunk if i in self.companies]
        return {"type": "list", "data": data, "total_count": None, "scroll_param": scroll.param}

    def search(self, what: str, body: Any) -> dict:
        """POST /contacts/search and /conversations/search: validate, filter, cursor-page in insertion order."""
        if not isinstance(body, Mapping) or "query" not in body:
            raise ApiError(400, "parameter_invalid", "query is required", "query")
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, Mapping):
            raise ApiError(400, "parameter_invalid", "pagination must be an object", "pagination")
        per_page = pagination.get("per_page", SEARCH_DEFAULT_PER_PAGE[what])
        if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= SEARCH_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be an integer between 1 and "
                           f"{SEARCH_MAX_PER_PAGE}", "per_page")  # fmt: skip
        snapshot, offset, after, page = _decode_cursor(pagination.get("starting_after"))
        dialect = self._dialect(what)
        try:
            validate(body["query"], dialect)
        except QueryError as error:
            raise ApiError(400, "parameter_invalid", str(error), error.field) from None
        with self.lock:
            records = self.contacts if what == "contacts" else self.conversations
            # A cursor walks the hits found for its first page (a snapshot of ids, kept for the walk), so a long
            # walk costs one evaluation of the query, not one per page. An unknown snapshot is recomputed.
            hits = self._snapshots.get(snapshot) if snapshot else None
            start = offset
            if hits is None:
                getter = self._contact_value if what == "contacts" else _conversation_value
                ordered = sorted(records.values(), key=lambda r: self._seq[r["id"]])
                hits = [r["id"] for r in ordered if matches(body["query"], lambda f, r=r: getter(r, f), dialect)]
                snapshot = uuid.uuid4().hex[:12]
                self._snapshots[snapshot] = hits
                while len(self._snapshots) > MAX_SEARCH_SNAPSHOTS:
                    self._snapshots.pop(next(iter(self._snapshots)))
                start = bisect.bisect_right([self._seq[i] for i in hits], after) if after >= 0 else 0
            chunk = [i for i in hits[start : start + per_page] if i in records]
            render = self.render_contact if what == "contacts" else dict
            data = [render(records[i]) for i in chunk]
            more = start + per_page < len(hits)
            last = start + per_page - 1
            cursor = _encode_cursor(snapshot, last + 1, self._seq[hits[last]], page + 1) if more else None
        pages: dict[str, Any] = {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": math.ceil(len(hits) / per_page),
        }
        if cursor:
            pages["next"] = {"per_page": per_page, "starting_after": cursor}
        key = "data" if what == "contacts" else "conversations"
        return {"type": "list" if what == "contacts" else "conversation.list", key: data,
                "total_count": len(hits), "pages": pages}  # fmt: skip

    def list_contacts(self, per_page: int, starting_after: str | None) -> dict:
        """GET /contacts: every contact, cursor-paged like search."""
        result = self.search(
            "contacts",
            {"query": {"field": "role", "operator": "IN", "value": ["user", "lead"]},
             "pagination": {"per_page": per_page, "starting_after": starting_after}},
        )  # fmt: skip
        return result

    def _dialect(self, what: str) -> SearchDialect:
        model = "contact" if what == "contacts" else "conversation"
        fields = CONTACT_FIELDS if what == "contacts" else CONVERSATION_FIELDS
        return SearchDialect(what, fields, what == "contacts", lambda name: self.custom_type(model, name))

    def _contact_value(self, contact: Mapping[str, Any], path: str) -> Any:
        if path == "company_id":
            return [self.companies[c]["company_id"] for c in contact.get("_companies", [])]
        if path in ("tag_id", "segment_id"):
            return []
        return _dig(contact, path)

    # --- data events ---------------------------------------------------------------------------------------------

    def submit_event(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise ApiError(400, "parameter_invalid", "body must be an object")
        name = body.get("event_name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "parameter_invalid", "event_name is required", "event_name")
        created = body.get("created_at")
        if not isinstance(created, int) or isinstance(created, bool):
            raise ApiError(400, "parameter_invalid", "created_at must be a UNIX timestamp", "created_at")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ApiError(400, "parameter_invalid", "metadata must be an object", "metadata")
        with self.lock:
            contact = self.find_contact(id=body.get("id"), user_id=body.get("user_id"), email=body.get("email"))
            kept = dict(list(metadata.items())[:EVENT_METADATA_MAX_KEYS])  # Intercom ignores keys past the tenth
            self.events.add(self._contact_index[contact["id"]], name, created, kept)

    def list_events(self, args: Mapping[str, str], base_url: str) -> dict:
        """GET /events: a contact's events, newest first, paged by `before` (ms); `since` returns newer ones."""
        if args.get("type") != "user":
            raise ApiError(400, "parameter_invalid", "type must be user", "type")
        try:
            per_page = int(args.get("per_page", EVENTS_DEFAULT_PER_PAGE))
            before = int(args["before"]) if args.get("before") else None
            since = int(args["since"]) if args.get("since") else None
        except ValueError:
            raise ApiError(400, "parameter_invalid", "per_page, before and since must be integers") from None
        if not 1 <= per_page <= EVENTS_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be between 1 and {EVENTS_MAX_PER_PAGE}",
                           "per_page")  # fmt: skip
        if not any(args.get(k) for k in ("intercom_user_id", "user_id", "email")):
            raise ApiError(400, "parameter_invalid", "one of intercom_user_id, user_id or email is required")
        with self.lock:
            contact = self.find_contact(
                id=args.get("intercom_user_id"), user_id=args.get("user_id"), email=args.get("email")
            )
            index = self._contact_index[contact["id"]]
            summary = str(args.get("summary", "")).lower() == "true"
            if summary:  # summaries count every event, also those too old to list
                events = self.events.for_contact(index)
            else:  # the newest per_page + 1 that the 90-day window, `before` and `since` let through
                floor = None if self.event_list_days is None else (self.now() - self.event_list_days * 86_400) * 1000
                bounds = [b for b in (since, None if floor is None else floor - 1) if b is not None]
                events = self.events.for_contact(index, max(bounds, default=None), before, newest=per_page + 1)
        identity = {"intercom_user_id": contact["id"], "email": contact.get("email") or "",
                    "user_id": contact.get("external_id") or ""}  # fmt: skip
        if summary:
            return {"type": "event.summary", **identity, "events": _summaries(events)}
        visible = events[::-1]  # newest first
        chunk = visible[:per_page]
        query = {"type": "user", "intercom_user_id": contact["id"], "per_page": str(per_page)}
        newest = chunk[0].ms if chunk else (since or 0)
        pages: dict[str, str] = {"since": _url(base_url, {**query, "since": str(newest)})}
        if len(visible) > per_page:
            pages["next"] = _url(base_url, {**query, "before": str(chunk[-1].ms)})
        rendered = [
            {"type": "event", "event_name": e.event_name, "created_at": e.created_at, **identity,
             "metadata": dict(e.metadata)}
            for e in chunk
        ]  # fmt: skip
        return {"type": "event.list", "events": rendered, "pages": pages}

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


def _coerce_seed(value: Any, data_type: str) -> Any:
    if data_type == "integer":
        return int(value)
    if data_type == "float":
        return float(value)
    if data_type == "boolean":
        return bool(value)
    if data_type == "date":
        return epoch(value)
    return str(value)


def _fits(value: Any, data_type: str) -> bool:
    if data_type == "string":
        return isinstance(value, str)
    if data_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if data_type in ("integer", "date"):
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float)


def _int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, "parameter_invalid", f"{name} must be an integer", name)
    return int(value)


def _dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _conversation_value(conversation: Mapping[str, Any], path: str) -> Any:
    if path == "contact_ids":
        return [c["id"] for c in conversation["contacts"]["contacts"]]
    if path == "teammate_ids":
        return [t["id"] for t in conversation["teammates"]["teammates"]]
    if path == "tag_ids":
        return [t["id"] for t in conversation["tags"]["tags"]]
    return _dig(conversation, path)


def _encode_cursor(snapshot: str, offset: int, after: int, page: int) -> str:
    raw = json.dumps({"s": snapshot, "o": offset, "after": after, "page": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> tuple[str | None, int, int, int]:
    """(snapshot, offset in it, sequence number of the last record returned, page) of a starting_after cursor."""
    if not cursor:
        return None, 0, -1, 1
    try:
        padded = str(cursor) + "=" * (-len(str(cursor)) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        return str(data["s"]), int(data["o"]), int(data["after"]), int(data["page"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "parameter_invalid", "starting_after is not a valid cursor", "starting_after") from None


def _summaries(events: Iterable[DataEvent]) -> list[dict]:
    by_name: dict[str, list[DataEvent]] = {}
    for event in events:
        by_name.setdefault(event.event_name, []).append(event)
    return [
        {"name": name, "first": _iso(items[0].created_at), "last": _iso(items[-1].created_at), "count": len(items)}
        for name, items in sorted(by_name.items())
    ]  # fmt: skip


def _url(base_url: str, query: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return f"{base_url.rstrip('/')}/events?{urlencode(query)}"
