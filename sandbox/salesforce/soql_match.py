"""Running a parsed SOQL query over records the way Salesforce compares values: WHERE trees (text without case, ids on
their 15-character form, LIKE patterns) and ORDER BY with NULLS FIRST / LAST."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.salesforce.soql import BoolNode, Condition, FieldPath

Getter = Callable[[dict[str, Any], FieldPath], Any]


def _norm(value: Any) -> Any:
    """SOQL compares text case-insensitively; ids are compared on their 15-character case-sensitive form."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _id15(value: Any) -> Any:
    return value[:15] if isinstance(value, str) and len(value) == 18 else value


def matches(node: Any, record: dict[str, Any], get: Getter) -> bool:
    """Evaluate a WHERE tree against one record; `get` reads a field path (following relationships)."""
    if node is None:
        return True
    if isinstance(node, BoolNode):
        if node.op == "and":
            return all(matches(child, record, get) for child in node.children)
        if node.op == "or":
            return any(matches(child, record, get) for child in node.children)
        return not matches(node.children[0], record, get)
    cond: Condition = node
    actual = get(record, cond.path)
    is_id = cond.path.target.type in {"id", "reference"}
    if is_id:
        actual = _id15(actual)
    if cond.op in {"in", "notin"}:
        wanted = [_id15(v) if is_id else v for v in cond.value]
        inside = any(_equal(actual, v, is_id) for v in wanted)
        return inside if cond.op == "in" else not inside
    if cond.op == "like":
        if actual is None:
            return False
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in cond.value)
        return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    expected = _id15(cond.value) if is_id else cond.value
    if cond.op == "=":
        return _equal(actual, expected, is_id)
    if cond.op == "!=":
        return not _equal(actual, expected, is_id)
    if actual is None or expected is None:
        return False
    left, right = (actual, expected) if is_id else (_norm(actual), _norm(expected))
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]


def _equal(actual: Any, expected: Any, is_id: bool) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return actual == expected if is_id else _norm(actual) == _norm(expected)


def sort_records(records: list[dict[str, Any]], order: list[tuple[FieldPath, bool, bool]], get: Getter) -> None:
    """Sort in place by ORDER BY items (stable, so ties keep insertion order as in a real org's index)."""
    for path, descending, nulls_first in reversed(order):
        present = [r for r in records if get(r, path) is not None]
        missing = [r for r in records if get(r, path) is None]
        present.sort(key=lambda r, p=path: _norm(get(r, p)), reverse=descending)
        records[:] = missing + present if nulls_first else present + missing
