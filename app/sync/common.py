"""Small helpers every part of the sync uses: naive UTC now (the store's convention) and IN-list chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _chunks(items: Sequence, size: int = IN_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
