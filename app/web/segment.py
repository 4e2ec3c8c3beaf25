"""A Segment-compatible HTTP intake: `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/group`, `/v1/batch`.

A product already instrumented with Segment or RudderStack points its HTTP destination here and sends usage
without new code. Authentication is Segment's: HTTP basic with the write key as the user name
(CSE_SEGMENT_WRITE_KEY), compared in constant time. Every message is stored in the webhook event log before the
answer, through the same group-committed intake as the CRM webhooks (app/webhook_events/store.py), deduplicated
by its `messageId`; processing later turns track, page and screen calls into activity events through the import
mapping's event types (app/history/segment.py): a track call's type is its `event`, a page or screen call's its
`name` (the mapping may also list "page" or "screen" for every page or screen view). Nothing here imports the
scoring stack.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from flask import Blueprint, Response, request

from app.web import context
from app.web.webhooks import _refuse, _schedule_processing
from app.webhook_events.store import record_events
from connectors.webhook_common import VendorEvent

VENDOR = "segment"
VIEWS = ("page", "screen")  # calls that name a page or screen viewed: usage, like track
CALLS = ("track", *VIEWS, "identify", "group")
MAX_ID = 255
segment = Blueprint("segment", __name__, url_prefix="/v1")


class Malformed(ValueError):
    pass


def _write_key() -> str | None:
    """The user name of a basic Authorization header (Segment sends the write key there, password empty)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def _event(message: object, call: str) -> VendorEvent:
    """One Segment message as a stored event: its messageId dedupes, its group or user names the record."""
    if not isinstance(message, dict):
        raise Malformed("a message must be a JSON object")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id or len(message_id) > MAX_ID:
        raise Malformed("every message needs a messageId (a string of at most 255 characters)")
    context_ = message.get("context") if isinstance(message.get("context"), dict) else {}
    group = message.get("groupId") or context_.get("groupId") or (message.get("properties") or {}).get("groupId")
    user = message.get("userId") or message.get("anonymousId")
    name = message.get("event") if call == "track" else _view_name(message, call) if call in VIEWS else call
    if call == "track" and not isinstance(name, str):
        raise Malformed("a track call needs an event name")
    refs = {"user_id": str(user) if user is not None else None, "group_id": str(group) if group is not None else None,
            "timestamp": message.get("timestamp") or message.get("sentAt")}  # fmt: skip
    return VendorEvent(message_id, "", call, str(group or user or "")[:128], str(name)[:64], refs,
                       json.dumps(message, separators=(",", ":")))  # fmt: skip


def _view_name(message: dict, call: str) -> str:
    """A page or screen call's name (top level, or in its properties as older libraries send it), else the call."""
    name = message.get("name") or (message.get("properties") or {}).get("name")
    return name if isinstance(name, str) and name else call


def _parse(body: bytes, call: str | None) -> list[VendorEvent]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Malformed(f"the body is not JSON: {error}") from error
    if call is not None:
        return [_event(data, call)]
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, list):
        raise Malformed("a batch needs a `batch` list")
    events = []
    for message in batch:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in CALLS:
            raise Malformed(f"unsupported message type {kind!r} in the batch (expected one of {', '.join(CALLS)})")
        events.append(_event(message, kind))
    return events


def _intake(call: str | None) -> Response:
    body = request.get_data(cache=False)
    expected = context.settings().segment_write_key
    if not expected:
        return _refuse(VENDOR, "rejected", 401, "the Segment intake is not configured (CSE_SEGMENT_WRITE_KEY)", body)
    given = _write_key()
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return _refuse(VENDOR, "rejected", 401, "missing or wrong write key", body)
    try:
        events = _parse(body, call)
    except Malformed as error:
        return _refuse(VENDOR, "malformed", 400, str(error), body)
    if record_events(context.engine(), VENDOR, events).new:
        _schedule_processing()
    return Response('{"success":true}', status=200, mimetype="application/json")


@segment.post("/track")
def track() -> Response:
    return _intake("track")


@segment.post("/page")
def page() -> Response:
    return _intake("page")


@segment.post("/screen")
def screen() -> Response:
    return _intake("screen")


@segment.post("/identify")
def identify() -> Response:
    return _intake("identify")


@segment.post("/group")
def group() -> Response:
    return _intake("group")


@segment.post("/batch")
def batch() -> Response:
    return _intake(None)
