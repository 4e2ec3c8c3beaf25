"""Listing and searching a workspace: company list and scroll, contact list, and search with cursor walks."""

from __future__ import annotations

import base64
import bisect
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.intercom.search import (
    CONTACT_FIELDS,
    CONVERSATION_FIELDS,
    QueryError,
    SearchDialect,
    matches,
    validate,
)
from sandbox.intercom.values import (
    COMPANY_LIST_MAX_PER_PAGE,
    COMPANY_LIST_MAX_RESULTS,
    COMPANY_SCROLL_PAGE,
    MAX_SEARCH_SNAPSHOTS,
    SEARCH_DEFAULT_PER_PAGE,
    SEARCH_MAX_PER_PAGE,
    ApiError,
    conversation_value,
    dig,
)


@dataclass
class Scroll:
    """The one open company scroll: Intercom allows a single scroll per workspace at a time."""

    param: str
    ids: list[str]
    position: int
    last_used: float


class Listing:
    """The list, scroll and search endpoints of a Workspace (a mixin: it reads the workspace's records)."""

    def list_companies(self, page: int, per_page: int, order: str) -> dict:
        if per_page < 1 or per_page > COMPANY_LIST_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be between 1 and {COMPANY_LIST_MAX_PER_PAGE}",
                           "per_page")  # fmt: skip
        if page < 1 or (page - 1) * per_page >= COMPANY_LIST_MAX_RESULTS:
            raise ApiError(400, "parameter_invalid", "page is out of range; use the scroll API beyond 10,000 "
                           "companies", "page")  # fmt: skip
        with self.lock:
            # The list leaves out companies without users, sorted by last_request_at (descending by default).
            rendered = [self.render_company(c) for c in self.companies.values() if self._company_contacts[c["id"]]]
            rendered.sort(key=lambda c: (c["last_request_at"], self._seq[c["id"]]), reverse=order != "asc")
            total = len(rendered)
            data = rendered[(page - 1) * per_page : page * per_page]
        pages = {"type": "pages", "page": page, "per_page": per_page, "total_pages": math.ceil(total / per_page)}
        return {"type": "list", "data": data, "pages": pages, "total_count": total}

    def scroll_companies(self, param: str | None) -> dict:
        """One scroll per app; it expires after `scroll_ttl_seconds` unused and closes on its empty last page."""
        with self.lock:
            now = self.clock()
            if self._scroll and now - self._scroll.last_used > self.scroll_ttl_seconds:
                self._scroll = None
            if param is None:
                if self._scroll is not None:
                    raise ApiError(400, "scroll_exists", "scroll already exists for this app")
                ids = sorted(self.companies, key=self._seq.__getitem__)
                self._scroll = Scroll(str(uuid.uuid4()), ids, 0, now)
            elif self._scroll is None or self._scroll.param != param:
                raise ApiError(404, "not_found", "scroll parameter not found; it may have expired")
            scroll = self._scroll
            chunk = scroll.ids[scroll.position : scroll.position + COMPANY_SCROLL_PAGE]
            scroll.position += len(chunk)
            scroll.last_used = now
            if not chunk:
                self._scroll = None  # the end: the param expires
            data = [self.render_company(self.companies[i]) for i in chunk if i in self.companies]
        return {"type": "list", "data": data, "total_count": None, "scroll_param": scroll.param}

    def search(self, what: str, body: Any) -> dict:
        """POST /contacts/search and /conversations/search: validate, filter, cursor-page in insertion order."""
        if not isinstance(body, Mapping) or "query" not in body:
            raise ApiError(400, "parameter_invalid", "query is required", "query")
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, Mapping):
            raise ApiError(400, "parameter_invalid", "pagination must be an object", "pagination")
        per_page = pagination.get("per_page", SEARCH_DEFAULT_PER_PAGE[what])
        if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= SEARCH_MAX_PER_PAGE:
            raise ApiError(400, "parameter_invalid", f"per_page must be an integer between 1 and "
                           f"{SEARCH_MAX_PER_PAGE}", "per_page")  # fmt: skip
        snapshot, offset, after, page = _decode_cursor(pagination.get("starting_after"))
        dialect = self._dialect(what)
        try:
            validate(body["query"], dialect)
        except QueryError as error:
            raise ApiError(400, "parameter_invalid", str(error), error.field) from None
        with self.lock:
            records = self.contacts if what == "contacts" else self.conversations
            # A cursor walks the hits found for its first page (a snapshot of ids, kept for the walk), so a long
            # walk costs one evaluation of the query, not one per page. An unknown snapshot is recomputed.
            hits = self._snapshots.get(snapshot) if snapshot else None
            start = offset
            if hits is None and what == "contacts":
                hits = self._hits_by_email(body["query"])
            if hits is None:
                getter = self._contact_value if what == "contacts" else conversation_value
                ordered = sorted(records.values(), key=lambda r: self._seq[r["id"]])
                hits = [r["id"] for r in ordered if matches(body["query"], lambda f, r=r: getter(r, f), dialect)]
                snapshot = uuid.uuid4().hex[:12]
                self._snapshots[snapshot] = hits
                while len(self._snapshots) > MAX_SEARCH_SNAPSHOTS:
                    self._snapshots.pop(next(iter(self._snapshots)))
                start = bisect.bisect_right([self._seq[i] for i in hits], after) if after >= 0 else 0
            chunk = [i for i in hits[start : start + per_page] if i in records]
            render = self.render_contact if what == "contacts" else self.render_conversation
            data = [render(records[i]) for i in chunk]
            more = start + per_page < len(hits)
            last = start + per_page - 1
            cursor = _encode_cursor(snapshot, last + 1, self._seq[hits[last]], page + 1) if more else None
        pages: dict[str, Any] = {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": math.ceil(len(hits) / per_page),
        }
        if cursor:
            pages["next"] = {"per_page": per_page, "starting_after": cursor}
        key = "data" if what == "contacts" else "conversations"
        return {"type": "list" if what == "contacts" else "conversation.list", key: data,
                "total_count": len(hits), "pages": pages}  # fmt: skip

    def _hits_by_email(self, query: Mapping[str, Any]) -> list[str] | None:
        """`email = X` answered from the email index (emails are unique, compared case-insensitively as
        `matches` does); None for any other query. A write-back looks a recipient up this way per message."""
        if query.get("field") != "email" or query.get("operator") != "=" or not isinstance(query.get("value"), str):
            return None
        found = self._contact_by_email.get(query["value"].lower())
        return [found] if found is not None else []

    def list_contacts(self, per_page: int, starting_after: str | None) -> dict:
        """GET /contacts: every contact, cursor-paged like search."""
        result = self.search(
            "contacts",
            {"query": {"field": "role", "operator": "IN", "value": ["user", "lead"]},
             "pagination": {"per_page": per_page, "starting_after": starting_after}},
        )  # fmt: skip
        return result

    def _dialect(self, what: str) -> SearchDialect:
        model = "contact" if what == "contacts" else "conversation"
        fields = CONTACT_FIELDS if what == "contacts" else CONVERSATION_FIELDS
        return SearchDialect(what, fields, what == "contacts", lambda name: self.custom_type(model, name))

    def _contact_value(self, contact: Mapping[str, Any], path: str) -> Any:
        if path == "company_id":
            return [self.companies[c]["company_id"] for c in contact.get("_companies", [])]
        if path in ("tag_id", "segment_id"):
            return []
        return dig(contact, path)


def _encode_cursor(snapshot: str, offset: int, after: int, page: int) -> str:
    raw = json.dumps({"s": snapshot, "o": offset, "after": after, "page": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> tuple[str | None, int, int, int]:
    """(snapshot, offset in it, sequence number of the last record returned, page) of a starting_after cursor."""
    if not cursor:
        return None, 0, -1, 1
    try:
        padded = str(cursor) + "=" * (-len(str(cursor)) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        return str(data["s"]), int(data["o"]), int(data["after"]), int(data["page"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "parameter_invalid", "starting_after is not a valid cursor", "starting_after") from None
