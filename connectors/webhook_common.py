"""What the three vendors' webhook parsers share: the errors they raise, the event shape they return, and the
hardened readers of what a sender controls (JSON bodies, timestamps, payload schemas)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError


class WebhookRejected(Exception):
    """The request is not from the vendor (401): bad or missing signature, stale timestamp."""


class WebhookMalformed(Exception):
    """The request is signed but unreadable (400): not JSON / XML, or not the vendor's shape."""


@dataclass(frozen=True)
class VendorEvent:
    """One change a vendor tells us about; `tenant` is the portal / workspace / org it comes from.

    `payload` is this event's own part of the request (not the whole body), so a request of N events stores
    N fragments rather than N copies of the body.
    """

    event_id: str
    tenant: str
    object: str
    object_id: str
    kind: str
    extra: dict = field(default_factory=dict, compare=False)
    payload: str | None = field(default=None, compare=False)


def same_signature(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the expected signature."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes) -> Any:
    """Parse a request body as strict JSON: no NaN / Infinity, no nesting deep enough to exhaust the stack."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise WebhookMalformed("body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise WebhookMalformed(f"body is not JSON: {error}") from None


def ascii_digits(value: str | None, header: str) -> int:
    """A header timestamp as an integer: ASCII digits only (str.isdigit also accepts '٣' and '²')."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 20:
        raise WebhookRejected(f"missing or invalid {header}")
    return int(value)


def validated(adapter: TypeAdapter, data: Any, what: str) -> Any:
    """Check a parsed payload against the vendor's schema; the first problem, with where it is, as a 400."""
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise WebhookMalformed(f"{what}: {where or 'body'}: {first['msg']}") from None
