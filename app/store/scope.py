"""Which accounts a query covers: the whole book, a list of ids, or a contiguous id range (a chunk or a shard).

A range is what lets a streamed or sharded scoring run read a slice of a million-account book: it becomes a
BETWEEN on the rollups' primary key (an index range scan), where an IN list or an IN (subquery) would make the
database look at every account's rollups for each slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, true


@dataclass(frozen=True)
class IdRange:
    """Account ids from `first` to `last`, both included."""

    first: int
    last: int


AccountScope = Sequence[int] | IdRange | None


def scope_filter(column, scope: AccountScope) -> ColumnElement[bool]:
    """`column` (an account id) restricted to the scope."""
    if scope is None:
        return true()
    if isinstance(scope, IdRange):
        return column.between(scope.first, scope.last)
    return column.in_(list(scope))


def range_filter(column, scope: AccountScope) -> ColumnElement[bool]:
    """A range scope repeated directly on a rollup table's account id, so the database scans only that slice.

    Lists and the whole book are already applied through the accounts subquery; this adds nothing for them.
    """
    return scope_filter(column, scope) if isinstance(scope, IdRange) else true()
