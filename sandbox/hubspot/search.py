"""POST /crm/v3/objects/{type}/search: HubSpot's filter groups, single sort, limit/after paging and its limits.

Documented behaviour reproduced here (developers.hubspot.com, "Search the CRM"): filters in a group are ANDed and
groups ORed; at most 5 groups, 6 filters per group, 18 in all; one sort; limit at most 200; `after` is an integer
offset; paging past 10,000 results is a 400; archived records never appear; datetime values compare as UNIX
milliseconds or ISO 8601. `total` counts every match, also beyond the 10,000 that can be paged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.hubspot.schema import (
    OBJECT_TYPES,
    SEARCH_MAX_FILTER_GROUPS,
    SEARCH_MAX_FILTERS,
    SEARCH_MAX_FILTERS_PER_GROUP,
    SEARCH_QUERY_MAX_CHARS,
    resolve_type,
)
from sandbox.hubspot.state import HubSpotState, InputError, Record
from sandbox.hubspot.values import comparable

OPERATORS = frozenset(
    {
        "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
    }
)  # fmt: skip


@dataclass
class SearchPage:
    total: int
    records: list[Record]
    next_after: str | None


def _kind(state: HubSpotState, object_type: str, name: str) -> str:
    if name in ("hs_object_id", "id"):
        return "number"
    definition = state.prop(object_type, name)
    if definition is None:
        raise InputError(f"There was a problem with the request: property {name!r} does not exist on {object_type}")
    return definition.type


def _value(state: HubSpotState, object_type: str, record: Record, name: str) -> str | None:
    if name in ("hs_object_id", "id"):
        return record.id
    return record.properties.get(name)


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z@._-]+", text.lower()) if t]


def _token_match(haystack: str, needle: str) -> bool:
    pattern = re.compile("^" + re.escape(needle.lower()).replace(r"\*", ".*") + "$")
    return any(pattern.match(t) for t in _tokens(haystack)) or needle.lower() in haystack.lower()


def _compile(state: HubSpotState, object_type: str, flt: dict) -> Callable[[Record], bool]:
    """Turn one filter into a predicate, resolving the property type and the wanted values once per request."""
    name = flt.get("propertyName")
    operator = flt.get("operator")
    if not name or operator not in OPERATORS:
        raise InputError(f"Invalid filter {flt!r}: propertyName and a valid operator are required")
    if name.startswith("associations."):
        to_type = resolve_type(name.split(".", 1)[1])
        if to_type is None:
            raise InputError(f"Unknown association filter {name}")
        wanted_ids = {str(v) for v in (flt.get("values") or [flt.get("value")]) if v is not None}
        negate = operator in ("NEQ", "NOT_IN")

        def linked(record: Record) -> bool:
            return bool(set(state.associated(object_type, record.id, to_type)) & wanted_ids) != negate

        return linked
    kind = _kind(state, object_type, name)

    def raw(record: Record) -> str | None:
        return _value(state, object_type, record, name)

    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        present = operator == "HAS_PROPERTY"
        return lambda record: (raw(record) not in (None, "")) == present
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        needle = str(flt.get("value", ""))
        positive = operator == "CONTAINS_TOKEN"

        def tokens(record: Record) -> bool:
            value = raw(record)
            return (value is not None and _token_match(value, needle)) == positive

        return tokens
    if operator in ("IN", "NOT_IN"):
        values = {comparable(kind, str(v)) for v in flt.get("values") or []}
        positive = operator == "IN"

        def member(record: Record) -> bool:
            have = comparable(kind, raw(record))
            return (have is not None and have in values) == positive

        return member
    want = comparable(kind, None if flt.get("value") is None else str(flt.get("value")))
    if operator == "NEQ":
        return lambda record: comparable(kind, raw(record)) != want
    if want is None:
        return lambda record: False
    if operator == "BETWEEN":
        high = comparable(kind, None if flt.get("highValue") is None else str(flt.get("highValue")))
        compare = lambda have: high is not None and want <= have <= high  # type: ignore[operator]  # noqa: E731
    else:
        compare = {
            "EQ": lambda have: have == want,
            "LT": lambda have: have < want,  # type: ignore[operator]
            "LTE": lambda have: have <= want,  # type: ignore[operator]
            "GT": lambda have: have > want,  # type: ignore[operator]
            "GTE": lambda have: have >= want,  # type: ignore[operator]
        }[operator]

    def ordered(record: Record) -> bool:
        have = comparable(kind, raw(record))
        if have is None:
            return False
        try:
            return bool(compare(have))
        except TypeError:
            return False

    return ordered


def _parse_sort(raw: object) -> tuple[str, bool]:
    """A sort is `{"propertyName", "direction"}`; the SDK's typed field also lets callers send `"name"`/`"-name"`."""
    if isinstance(raw, dict):
        return str(raw.get("propertyName", "")), str(raw.get("direction", "ASCENDING")).upper() == "DESCENDING"
    text = str(raw)
    return (text[1:], True) if text.startswith("-") else (text, False)


def run_search(state: HubSpotState, object_type: str, body: dict) -> SearchPage:
    """Evaluate a search request body against the live records of `object_type`."""
    config = state.config
    groups = body.get("filterGroups") or []
    if len(groups) > SEARCH_MAX_FILTER_GROUPS:
        raise InputError(f"Too many filter groups ({len(groups)}); the maximum is {SEARCH_MAX_FILTER_GROUPS}")
    if any(len(g.get("filters") or []) > SEARCH_MAX_FILTERS_PER_GROUP for g in groups):
        raise InputError(f"A filter group may hold at most {SEARCH_MAX_FILTERS_PER_GROUP} filters")
    if sum(len(g.get("filters") or []) for g in groups) > SEARCH_MAX_FILTERS:
        raise InputError(f"A search may hold at most {SEARCH_MAX_FILTERS} filters in all")
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise InputError("Only one sort is supported")
    limit = body.get("limit", 10)
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise InputError(f"limit must be an integer, got {limit!r}") from None
    if limit < 1 or limit > config.search_max_limit:
        raise InputError(f"limit must be between 1 and {config.search_max_limit}, got {limit}")
    after_raw = body.get("after")
    try:
        after = int(after_raw) if after_raw not in (None, "") else 0
    except (TypeError, ValueError):
        raise InputError(f"after must be an integer offset, got {after_raw!r}") from None
    if after >= config.search_total_cap:
        raise InputError(
            f"The search endpoints are limited to {config.search_total_cap} total results for any given query."
        )
    query = body.get("query")
    if query and len(str(query)) > SEARCH_QUERY_MAX_CHARS:
        raise InputError(f"The query may hold at most {SEARCH_QUERY_MAX_CHARS} characters")

    with state.lock:
        candidates = sorted(state.live(object_type), key=lambda r: int(r.id))
        if query:
            fields = OBJECT_TYPES[object_type].searchable
            needle = str(query).lower()
            candidates = [r for r in candidates if any(needle in (r.properties.get(f) or "").lower() for f in fields)]
        if groups:
            compiled = [[_compile(state, object_type, f) for f in g.get("filters") or []] for g in groups]
            candidates = [r for r in candidates if any(all(p(r) for p in group) for group in compiled)]
        if sorts:
            name, descending = _parse_sort(sorts[0])
            kind = _kind(state, object_type, name)
            present = [r for r in candidates if comparable(kind, _value(state, object_type, r, name)) is not None]
            absent = [r for r in candidates if comparable(kind, _value(state, object_type, r, name)) is None]
            present.sort(key=lambda r: comparable(kind, _value(state, object_type, r, name)), reverse=descending)  # type: ignore[arg-type,return-value]
            candidates = present + absent
    total = len(candidates)
    end = min(after + limit, total, config.search_total_cap)
    window = candidates[after:end]
    next_after = str(end) if end < total else None
    return SearchPage(total=total, records=window, next_after=next_after)
