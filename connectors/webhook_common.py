"""What the three vendors' webhook parsers share: the error they raise and the event shape they return."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field


class WebhookRejected(Exception):
    """The request is not from the vendor (401): bad or missing signature, stale timestamp."""


class WebhookMalformed(Exception):
    """The request is signed but unreadable (400): not JSON / XML, or not the vendor's shape."""


@dataclass(frozen=True)
class VendorEvent:
    """One change a vendor tells us about; `tenant` is the portal / workspace / org it comes from."""

    event_id: str
    tenant: str
    object: str
    object_id: str
    kind: str
    extra: dict = field(default_factory=dict, compare=False)


def same_signature(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the expected signature."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())
