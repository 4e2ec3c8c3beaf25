"""What every vendor connector offers the sync: pages of raw records per object, changed since a cursor.

The sync (app/sync/) owns cursors, mappings, identity resolution and the store; a connector only talks to its
vendor through the official SDK and hands over plain dicts, so a new vendor is one new package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class PullStats:
    """What a client's calls cost and what a pull got from them, for the sync log and the efficiency benchmarks.

    Every client owns one (`client.stats`; connectors.retry counts each attempt and each retry into it) and a source
    shares its client's, adding the records it hands over.
    """

    api_calls: int = 0
    records: int = 0
    retries: int = 0
    logins: int = 0  # not API calls: a vendor's login endpoint has its own limits
    relogins: int = 0  # expired sessions renewed
    by_object: dict[str, int] = field(default_factory=dict)


class VendorSource(Protocol):
    vendor: str
    stats: PullStats

    def objects(self) -> tuple[str, ...]:
        """Vendor objects this connector can pull, in the order a sync should pull them (companies first)."""
        ...

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        """Pages of raw records of `obj` changed at or after `since` (None: everything), oldest change first.

        Records are flat dicts whose keys are the source paths a mapping's `from` names (nested objects may stay
        nested; the mapping reads dotted paths). Deleted or archived records are included, flagged by the field
        the mapping's `deleted` names, so the sync can honour them. Ordering by change time lets the sync
        checkpoint its cursor after every page and resume a killed run without gaps.
        """
        ...

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict]:
        """Just the records of `obj` with these ids, in the shape `pull` gives (deleted ones flagged the same way).

        What a webhook needs: the few records it names, fresh, in a handful of calls. Ids the vendor does not know
        are left out. `since` matters only for objects that are streams rather than records (Intercom's events,
        which take contact ids and list those people's events since then).
        """
        ...
