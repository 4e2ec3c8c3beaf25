"""Intercom's search query language (contacts and conversations search), as documented for API 2.11.

A query is either one filter `{field, operator, value}` or a group `{operator: AND|OR, value: [queries]}`,
nested at most two levels deep with at most 15 filters per group. The two endpoints differ on dates, and the
difference matters to an incremental sync, so both behaviours are kept:

* contacts search matches timestamps by *calendar day* in the workspace's timezone (UTC here): `=` matches the
  whole day, `>` starts at the next day, `<` ends before that day, and `!=`, `>=`, `<=`, `IN`, `NIN` are errors;
* conversations search compares timestamps exactly, and its `>` / `<` include the boundary ("greater (or
  equal) than"); `>=` / `<=` are not in its operator table and are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DAY = 86_400
MAX_NESTING = 2
MAX_FILTERS_PER_GROUP = 15
OPERATORS = ("=", "!=", "IN", "NIN", "<", "<=", ">", ">=", "~", "!~", "^", "$")


class QueryError(ValueError):
    """A query the real API would refuse with 400; `field` names the culprit when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SearchDialect:
    """What differs between the search endpoints: field types and how dates compare."""

    name: str
    field_types: Mapping[str, str]  # field -> string | integer | boolean | date
    day_granular_dates: bool  # contacts: True (calendar-day matching); conversations: False (exact, inclusive)
    custom_types: Callable[[str], str | None]  # type of custom_attributes.<name>, None if unknown

    def type_of(self, field: str) -> str:
        if field.startswith("custom_attributes."):
            kind = self.custom_types(field.split(".", 1)[1])
            if kind is None:
                raise QueryError(f"{field} is not a searchable custom attribute", field)
            return {"float": "integer", "datetime": "date"}.get(kind, kind)
        if field not in self.field_types:
            raise QueryError(f"{field} is not a searchable field for {self.name}", field)
        return self.field_types[field]


CONTACT_FIELDS: dict[str, str] = {
    "id": "string", "role": "string", "name": "string", "avatar": "string", "owner_id": "integer",
    "email": "string", "email_domain": "string", "phone": "string", "external_id": "string",
    "created_at": "date", "signed_up_at": "date", "updated_at": "date", "last_seen_at": "date",
    "last_contacted_at": "date", "last_replied_at": "date", "last_email_opened_at": "date",
    "last_email_clicked_at": "date", "language_override": "string", "browser": "string",
    "browser_language": "string", "os": "string", "location.country": "string", "location.region": "string",
    "location.city": "string", "unsubscribed_from_emails": "boolean", "marked_email_as_spam": "boolean",
    "has_hard_bounced": "boolean", "ios_last_seen_at": "date", "android_last_seen_at": "date",
    "segment_id": "string", "tag_id": "string", "company_id": "string",
}  # fmt: skip

CONVERSATION_FIELDS: dict[str, str] = {
    "id": "string", "created_at": "date", "updated_at": "date", "source.type": "string", "source.id": "string",
    "source.delivered_as": "string", "source.subject": "string", "source.body": "string",
    "source.author.id": "string", "source.author.type": "string", "source.author.name": "string",
    "source.author.email": "string", "source.url": "string", "contact_ids": "string", "teammate_ids": "string",
    "admin_assignee_id": "integer", "team_assignee_id": "integer", "channel_initiated": "string",
    "open": "boolean", "read": "boolean", "state": "string", "waiting_since": "date", "snoozed_until": "date",
    "tag_ids": "string", "priority": "string", "conversation_rating.requested_at": "date",
    "conversation_rating.replied_at": "date", "conversation_rating.score": "integer",
    "conversation_rating.remark": "string", "conversation_rating.contact_id": "string",
}  # fmt: skip


def validate(query: Any, dialect: SearchDialect, depth: int = 0) -> None:
    """Raise QueryError for anything the real endpoint refuses (shape, nesting, operator vs field type)."""
    if not isinstance(query, Mapping):
        raise QueryError("query must be an object")
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        if depth >= MAX_NESTING:
            raise QueryError(f"a query may nest at most {MAX_NESTING} levels of AND/OR")
        parts = query.get("value")
        if not isinstance(parts, list) or not parts:
            raise QueryError(f"{operator} needs a non-empty list of filters")
        if len(parts) > MAX_FILTERS_PER_GROUP:
            raise QueryError(f"at most {MAX_FILTERS_PER_GROUP} filters per {operator} group")
        for part in parts:
            validate(part, dialect, depth + 1)
        return
    field = query.get("field")
    if not isinstance(field, str) or not field:
        raise QueryError("a filter needs a field")
    if operator not in OPERATORS:
        raise QueryError(f"operator {operator!r} is not supported", field)
    kind = dialect.type_of(field)
    value = query.get("value")
    if operator in ("IN", "NIN"):
        if not isinstance(value, list):
            raise QueryError(f"{operator} needs an array value", field)
    elif isinstance(value, list):
        raise QueryError(f"{operator} does not take an array value", field)
    if kind == "date":
        allowed = ("=", "<", ">") if dialect.day_granular_dates else ("=", "!=", "IN", "NIN", "<", ">")
        if operator not in allowed:
            raise QueryError(f"operator {operator} is not supported on date field {field}", field)
        for item in value if isinstance(value, list) else [value]:
            _as_int(item, field)
    elif kind == "integer":
        if operator in ("~", "!~", "^", "$"):
            raise QueryError(f"operator {operator} is not supported on integer field {field}", field)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                _as_int(item, field)
    elif kind == "boolean":
        if operator not in ("=", "!=", "IN", "NIN"):
            raise QueryError(f"operator {operator} is not supported on boolean field {field}", field)
    elif operator in ("<", "<=", ">", ">="):
        raise QueryError(f"operator {operator} is not supported on string field {field}", field)
    if field == "tag_id" and operator not in ("=", "!="):
        raise QueryError("tag_id supports only = and !=", field)


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise QueryError(f"{field} needs a number", field)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise QueryError(f"{field} needs a UNIX timestamp or integer, got {value!r}", field) from None


def matches(query: Mapping[str, Any], record: Callable[[str], Any], dialect: SearchDialect) -> bool:
    """Evaluate a validated query; `record(field)` returns the record's value(s) for a field path."""
    operator = query["operator"]
    if operator == "AND":
        return all(matches(part, record, dialect) for part in query["value"])
    if operator == "OR":
        return any(matches(part, record, dialect) for part in query["value"])
    field = query["field"]
    kind = dialect.type_of(field)
    actual = record(field)
    values = actual if isinstance(actual, list) else [actual]  # multi-valued fields (tag_id, contact_ids)
    expected = query.get("value")
    if operator in ("!=", "NIN", "!~"):
        positive = {"!=": "=", "NIN": "IN", "!~": "~"}[operator]
        return not any(_compare(v, positive, expected, kind, dialect) for v in values)
    return any(_compare(v, operator, expected, kind, dialect) for v in values)


def _compare(actual: Any, operator: str, expected: Any, kind: str, dialect: SearchDialect) -> bool:
    if operator == "IN":
        return any(_compare(actual, "=", item, kind, dialect) for item in expected)
    if actual is None:
        return expected is None and operator == "="
    if kind == "date":
        return _compare_date(int(actual), operator, int(expected), dialect.day_granular_dates)
    if kind == "integer":
        if expected is None:
            return False
        a, e = float(actual), float(expected)
        return {"=": a == e, "<": a < e, ">": a > e, "<=": a <= e, ">=": a >= e}[operator]
    if kind == "boolean":
        return bool(actual) == (expected if isinstance(expected, bool) else str(expected).lower() == "true")
    a, e = str(actual).lower(), "" if expected is None else str(expected).lower()
    return {"=": a == e, "~": e in a, "^": a.startswith(e), "$": a.endswith(e)}[operator]


def _compare_date(actual: int, operator: str, expected: int, day_granular: bool) -> bool:
    if not day_granular:  # conversations: exact seconds, and > / < include the boundary
        return {"=": actual == expected, ">": actual >= expected, "<": actual <= expected}[operator]
    day = expected - expected % DAY
    return {"=": day <= actual < day + DAY, ">": actual >= day + DAY, "<": actual < day}[operator]
