"""Survey answers from Intercom, read the way its API offers them (2.11).

* **NPS replies.** A survey goes out as an admin message (POST /messages). Intercom documents that a message has
  no conversation until the contact responds, and that the conversation is then found by searching for the
  message id: `POST /conversations/search` on `source.id` (IN, at most 15 values a filter group here, to stay
  inside the documented limit). Search results carry no parts, so each conversation found is retrieved once
  with the SDK's typed `conversations.find` (GET /conversations/{id}; few, so the typed model's cost does not
  matter) and the contact's first comment with a 0-10 score is the answer.
* **CSAT.** A conversation rating (1-5, with a remark) is found by `conversation_rating.replied_at > since`;
  its contact's email comes from one contacts search per 150 contacts.

Both run through IntercomClient, so every call is retried, rate-limit aware and counted like the pull's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.intercom.client import IntercomClient
from connectors.intercom.source import SEARCH_PAGE, epoch
from connectors.surveys import SurveyAnswer, nps_score

IDS_PER_FILTER = 15


def _utc(seconds: int | None) -> datetime:
    return datetime.fromtimestamp(int(seconds or 0), UTC).replace(tzinfo=None)


class IntercomSurveys:
    vendor = "intercom"

    def __init__(self, client: IntercomClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Any) -> IntercomSurveys:
        return cls(IntercomClient.from_settings(settings))

    def close(self) -> None:
        self.client.close()

    def _search(self, what: str, query: dict) -> list[dict]:
        key = "data" if what == "contacts" else "conversations"
        hits, cursor = [], None
        while True:
            pagination: dict[str, Any] = {"per_page": SEARCH_PAGE, **({"starting_after": cursor} if cursor else {})}
            body = self.client.request("POST", f"{what}/search", json_body={"query": query, "pagination": pagination})
            hits += (body or {}).get(key) or []
            cursor = (((body or {}).get("pages") or {}).get("next") or {}).get("starting_after")
            if not cursor:
                return hits

    def answers(self, message_ids: list[str], since: datetime | None) -> list[SurveyAnswer]:
        """NPS replies to these survey messages, and CSAT ratings given since `since` (all when None)."""
        return self.nps_replies(message_ids) + self.ratings(since)

    def nps_replies(self, message_ids: list[str]) -> list[SurveyAnswer]:
        out = []
        for start in range(0, len(message_ids), IDS_PER_FILTER):
            chunk = [str(i) for i in message_ids[start : start + IDS_PER_FILTER]]
            for found in self._search("conversations", {"field": "source.id", "operator": "IN", "value": chunk}):
                _, conversation = self.client.call(
                    lambda cid=str(found["id"]): self.client.sdk.conversations.find(conversation_id=cid)
                )
                answer = self._reply(conversation or {})
                if answer is not None:
                    out.append(answer)
        return out

    @staticmethod
    def _reply(conversation: dict) -> SurveyAnswer | None:
        parts = ((conversation.get("conversation_parts") or {}).get("conversation_parts")) or []
        for part in sorted(parts, key=lambda p: (p.get("created_at") or 0, str(p.get("id")))):
            author = part.get("author") or {}
            if part.get("part_type") != "comment" or author.get("type") not in ("user", "lead", "contact"):
                continue
            score = nps_score(part.get("body"))
            if score is not None:
                return SurveyAnswer("nps", float(score), _utc(part.get("created_at")),
                                    f"conversation:{conversation['id']}", author.get("email") or None,
                                    str((conversation.get("source") or {}).get("id")), None)  # fmt: skip
        return None

    def ratings(self, since: datetime | None) -> list[SurveyAnswer]:
        query = {"field": "conversation_rating.replied_at", "operator": ">", "value": epoch(since) or 0}
        rated = [c for c in self._search("conversations", query) if (c.get("conversation_rating") or {}).get("rating")]
        contact_ids = sorted({str(c["conversation_rating"]["contact"]["id"]) for c in rated})
        emails: dict[str, str | None] = {}
        for start in range(0, len(contact_ids), SEARCH_PAGE):
            query = {"field": "id", "operator": "IN", "value": contact_ids[start : start + SEARCH_PAGE]}
            emails.update({c["id"]: c.get("email") for c in self._search("contacts", query)})
        out = []
        for conversation in rated:
            rating = conversation["conversation_rating"]
            out.append(SurveyAnswer(
                "csat", float(rating["rating"]), _utc(rating.get("updated_at") or conversation.get("updated_at")),
                f"rating:{conversation['id']}", emails.get(str(rating["contact"]["id"])), None,
                rating.get("remark") or None,
            ))  # fmt: skip
        return out
