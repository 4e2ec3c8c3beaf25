"""Intercom's vocabulary for the sandbox workspace: documented limits, ids, errors and value conversions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

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


def epochs(values: pd.Series) -> np.ndarray:
    """Vector form of `epoch` (float, NaN where missing) for a datetime-like column."""
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    seconds = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    return np.floor(seconds.to_numpy(dtype=float, na_value=np.nan))


def clean(value: Any) -> Any:
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


def hex_id(prefix: str, n: int) -> str:
    """A 24-character hex id like Intercom's, stable for a given sequence number."""
    return f"{prefix}{n:0{24 - len(prefix)}x}"


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- data events ------------------------------------------------------------------------------------------------


def coerce_seed(value: Any, data_type: str) -> Any:
    if data_type == "integer":
        return int(value)
    if data_type == "float":
        return float(value)
    if data_type == "boolean":
        return bool(value)
    if data_type == "date":
        return epoch(value)
    return str(value)


def fits(value: Any, data_type: str) -> bool:
    if data_type == "string":
        return isinstance(value, str)
    if data_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if data_type in ("integer", "date"):
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float)


def int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, "parameter_invalid", f"{name} must be an integer", name)
    return int(value)


def dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def conversation_value(conversation: Mapping[str, Any], path: str) -> Any:
    if path == "contact_ids":
        return [c["id"] for c in conversation["contacts"]["contacts"]]
    if path == "teammate_ids":
        return [t["id"] for t in conversation["teammates"]["teammates"]]
    if path == "tag_ids":
        return [t["id"] for t in conversation["tags"]["tags"]]
    if path.startswith("conversation_rating."):
        return rating_value(conversation, path)
    return dig(conversation, path)


HIDDEN = "_"  # record keys starting with this are the sandbox's own bookkeeping, never served


def rating_value(conversation: Mapping[str, Any], path: str) -> Any:
    """A searchable `conversation_rating.*` field: 2.11's rating object shows `rating`, `remark`, `created_at` (when
    it was requested) and `contact`; when it was given is kept aside (sandbox/intercom/replies.py)."""
    rating = conversation.get("conversation_rating") or {}
    if path == "conversation_rating.replied_at":
        return conversation.get(HIDDEN + "rating_replied_at")
    if path == "conversation_rating.contact_id":
        return (rating.get("contact") or {}).get("id")
    return rating.get({"score": "rating", "requested_at": "created_at"}.get(path.split(".", 1)[1], "remark"))
