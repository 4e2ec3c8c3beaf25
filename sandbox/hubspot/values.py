"""HubSpot's wire formats for property values: every value travels as a string, dates and datetimes in two forms.

HubSpot accepts a datetime as ISO 8601 or as UNIX milliseconds and always answers ISO 8601 with milliseconds and a
`Z`; a date property takes `YYYY-MM-DD` or the millisecond timestamp of that day's UTC midnight. The sandbox
normalizes on write and compares on search with the same helpers, so both forms behave as on the real portal.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from functools import lru_cache

_MS_PATTERN = re.compile(r"^-?\d+$")
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_ms(moment: datetime) -> str:
    """`2026-11-01T09:30:00.123Z`: the form HubSpot answers datetimes in."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_ms(moment: datetime) -> int:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) if moment.microsecond % 1000 == 0 else round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_datetime(value: str) -> datetime | None:
    """ISO 8601 (with or without zone; none means UTC) or UNIX milliseconds; None if neither."""
    text = value.strip()
    if _MS_PATTERN.match(text):
        return from_ms(int(text))
    if _DATE_PATTERN.match(text):
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(value: str) -> date | None:
    """`YYYY-MM-DD` or the milliseconds of a UTC midnight (HubSpot refuses other times of day for dates)."""
    text = value.strip()
    if _DATE_PATTERN.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    if _MS_PATTERN.match(text):
        moment = from_ms(int(text))
        return moment.date() if moment.time() == time() else None
    return None


def parse_number(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_wire(value: object) -> str | None:
    """What a JSON property value becomes on HubSpot's side: a string (booleans lower case), None for empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text != "" else None


@lru_cache(maxsize=262_144)
def comparable(kind: str, value: str | None) -> float | str | None:
    """A sortable, comparable form of a stored or filter value of a property of type `kind` (memoized: search
    compares the same stored strings on every request)."""
    if value is None or value == "":
        return None
    if kind in ("datetime", "date"):
        moment = parse_datetime(value)
        return float(to_ms(moment)) if moment else None
    if kind == "number":
        return parse_number(value)
    if kind == "bool":
        return value.strip().lower()
    return value.lower()
