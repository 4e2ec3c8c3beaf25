"""Data events: a contact's event store (columns for the seeded bulk) and the submit / list events API."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbox.intercom.values import (
    EVENT_METADATA_MAX_KEYS,
    EVENTS_DEFAULT_PER_PAGE,
    EVENTS_MAX_PER_PAGE,
    ApiError,
    iso,
)


@dataclass(frozen=True)
class DataEvent:
    """One data event; `ms` orders events (Intercom keeps milliseconds and pages on them)."""

    ms: int
    created_at: int
    event_name: str
    metadata: Mapping[str, Any]


class EventStore:
    """Data events per contact: the seeded bulk as sorted columns (cheap for a full demo book), plus a list of
    events submitted through the API."""

    def __init__(self) -> None:
        self._contact: np.ndarray = np.empty(0, np.int64)
        self._ms = np.empty(0, np.int64)
        self._name = np.empty(0, np.int32)
        self._count = np.empty(0, np.int64)
        self._value = np.empty(0, np.float64)
        self._feature = np.empty(0, np.int32)
        self._scope = np.empty(0, bool)
        self._names: list[str] = []
        self._features: list[str] = []
        self._posted: dict[int, list[DataEvent]] = {}

    def load(self, frame: pd.DataFrame) -> None:
        """Columns: contact (int index), ms, event_name, count, value, feature (str|None), scope_account."""
        frame = frame.sort_values(["contact", "ms"], kind="stable")
        names = pd.Categorical(frame["event_name"])
        features = pd.Categorical(frame["feature"])
        self._contact = frame["contact"].to_numpy(np.int64)
        self._ms = frame["ms"].to_numpy(np.int64)
        self._name, self._names = names.codes.astype(np.int32), [str(c) for c in names.categories]
        self._feature, self._features = features.codes.astype(np.int32), [str(c) for c in features.categories]
        self._count = frame["count"].to_numpy(np.int64)
        self._value = frame["value"].to_numpy(np.float64)
        self._scope = frame["scope_account"].to_numpy(bool)

    def __len__(self) -> int:
        return len(self._ms) + sum(len(v) for v in self._posted.values())

    def for_contact(
        self, contact: int, after_ms: int | None = None, before_ms: int | None = None, newest: int | None = None
    ) -> list[DataEvent]:
        """Events of one contact, oldest first: only those with after_ms < ms < before_ms, and only the `newest`
        few of them when asked (a listing page needs no more, and building the rest is what costs)."""
        lo, hi = (int(i) for i in np.searchsorted(self._contact, [contact, contact + 1]))
        if after_ms is not None:
            lo += int(np.searchsorted(self._ms[lo:hi], after_ms, side="right"))
        if before_ms is not None:
            hi = lo + int(np.searchsorted(self._ms[lo:hi], before_ms, side="left"))
        if newest is not None:
            lo = max(lo, hi - newest)
        out = [self._event(i) for i in range(lo, hi)]
        posted = [
            e
            for e in self._posted.get(contact, ())
            if (after_ms is None or e.ms > after_ms) and (before_ms is None or e.ms < before_ms)
        ]
        if posted:
            out = sorted([*out, *posted], key=lambda e: e.ms)
        return out[-newest:] if newest is not None else out

    def _event(self, i: int) -> DataEvent:
        metadata: dict[str, Any] = {"count": int(self._count[i])}
        if not math.isnan(self._value[i]):
            metadata["value"] = float(self._value[i])
        if self._feature[i] >= 0:
            metadata["feature"] = self._features[self._feature[i]]
        if self._scope[i]:
            metadata["scope"] = "account"
        ms = int(self._ms[i])
        return DataEvent(ms, ms // 1000, self._names[self._name[i]], metadata)

    def add(self, contact: int, event_name: str, created_at: int, metadata: Mapping[str, Any]) -> bool:
        """Record a submitted event; False if Intercom would drop it as a duplicate (same name and second)."""
        existing = self.for_contact(contact)
        if any(e.event_name == event_name and e.created_at == created_at for e in existing):
            return False
        same_second = sum(1 for e in existing if e.created_at == created_at)
        event = DataEvent(created_at * 1000 + same_second, created_at, event_name, dict(metadata))
        self._posted.setdefault(contact, []).append(event)
        return True


class EventsApi:
    """POST /events and GET /events of a Workspace (a mixin: it uses the workspace's contacts and lock)."""

    def submit_event(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise ApiError(400, "parameter_invalid", "body must be an object")
        name = body.get("event_name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "parameter_invalid", "event_name is required", "event_name")
        created = body.get("created_at")
        if not isinstance(created, int) or isinstance(created, bool):
            raise ApiError(400, "parameter_invalid", "created_at must be a UNIX timestamp", "created_at")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ApiError(400, "parameter_invalid", "metadata must be an object", "metadata")
        with self.lock:
            contact = self.find_contact(id=body.get("id"), user_id=body.get("user_id"), email=body.get("email"))
            kept = dict(list(metadata.items())[:EVENT_METADATA_MAX_KEYS])  # Intercom ignores keys past the tenth
            self.events.add(self._contact_index[contact["id"]], name, created, kept)

    def list_events(self, args: Mapping[str, str], base_url: str) -> dict:
        """GET /events: a contact's events, newest first, paged by `before` (ms); `since` returns newer ones."""
        if args.get("type") != "user":
            raise ApiError(400, "parameter_invalid", "type must be user", "type")
        try:
            per_page = int(args.get("per_page", EVENTS_DEFAULT_PER_PAGE))
            before = int(args["before"]) if args.get("before") else None
            since = int(args["since"]) if args.get("since") else None
        except ValueError:
            raise ApiError(400, "parameter_invalid", "per_page, before and since must be integers") from None
        if not 1 <= per_page <= EVENTS_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be between 1 and {EVENTS_MAX_PER_PAGE}",
                           "per_page")  # fmt: skip
        if not any(args.get(k) for k in ("intercom_user_id", "user_id", "email")):
            raise ApiError(400, "parameter_invalid", "one of intercom_user_id, user_id or email is required")
        with self.lock:
            contact = self.find_contact(
                id=args.get("intercom_user_id"), user_id=args.get("user_id"), email=args.get("email")
            )
            index = self._contact_index[contact["id"]]
            summary = str(args.get("summary", "")).lower() == "true"
            if summary:  # summaries count every event, also those too old to list
                events = self.events.for_contact(index)
            else:  # the newest per_page + 1 that the 90-day window, `before` and `since` let through
                floor = None if self.event_list_days is None else (self.now() - self.event_list_days * 86_400) * 1000
                bounds = [b for b in (since, None if floor is None else floor - 1) if b is not None]
                events = self.events.for_contact(index, max(bounds, default=None), before, newest=per_page + 1)
        identity = {"intercom_user_id": contact["id"], "email": contact.get("email") or "",
                    "user_id": contact.get("external_id") or ""}  # fmt: skip
        if summary:
            return {"type": "event.summary", **identity, "events": _summaries(events)}
        visible = events[::-1]  # newest first
        chunk = visible[:per_page]
        query = {"type": "user", "intercom_user_id": contact["id"], "per_page": str(per_page)}
        newest = chunk[0].ms if chunk else (since or 0)
        pages: dict[str, str] = {"since": _url(base_url, {**query, "since": str(newest)})}
        if len(visible) > per_page:
            pages["next"] = _url(base_url, {**query, "before": str(chunk[-1].ms)})
        rendered = [
            {"type": "event", "event_name": e.event_name, "created_at": e.created_at, **identity,
             "metadata": dict(e.metadata)}
            for e in chunk
        ]  # fmt: skip
        return {"type": "event.list", "events": rendered, "pages": pages}

    # --- messages ------------------------------------------------------------------------------------------------


def _summaries(events: Iterable[DataEvent]) -> list[dict]:
    by_name: dict[str, list[DataEvent]] = {}
    for event in events:
        by_name.setdefault(event.event_name, []).append(event)
    return [
        {"name": name, "first": iso(items[0].created_at), "last": iso(items[-1].created_at), "count": len(items)}
        for name, items in sorted(by_name.items())
    ]  # fmt: skip


def _url(base_url: str, query: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return f"{base_url.rstrip('/')}/events?{urlencode(query)}"
