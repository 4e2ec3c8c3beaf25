"""What every vendor connector offers the write-back: batched writes with a result per record.

The outbox (app/writeback) decides what to write and when; a pusher only turns rows into vendor calls through the
official SDK, at most `batch_limits[operation]` rows per call, and says for each row whether it landed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class PushRow:
    """One outbox row, with the fields already named as the CRM names them (through the push mapping)."""

    row_id: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class PushResult:
    row_id: int
    ok: bool
    external_id: str | None = None
    error: str | None = None
    retryable: bool = True  # False: the vendor refused the record itself (bad value, missing record): park it


class VendorPusher(Protocol):
    vendor: str
    batch_limits: dict[str, int]
    # Operations a second delivery cannot duplicate (upserts, lookups by dedupe key). The others are delivered
    # at most once: a crash mid-call parks the row for an admin instead of sending it again.
    idempotent: set[str]

    def update_fields(self, rows: list[PushRow]) -> list[PushResult]:
        """Write score fields onto company records (payload: object, external_id, fields)."""
        ...

    def create_tasks(self, rows: list[PushRow]) -> list[PushResult]:
        """Create CSM tasks once per dedupe key (payload: company_id, title, reason, priority, due, dedupe_key)."""
        ...

    def send_messages(self, rows: list[PushRow]) -> list[PushResult]:
        """Send in-app messages once per dedupe key (payload: email, title, reason, dedupe_key)."""
        ...
