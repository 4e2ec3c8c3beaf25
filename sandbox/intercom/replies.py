"""What a contact does with an admin's message, as Intercom records it: a reply and a conversation rating.

Intercom's messages API documents that a message has no conversation until the contact responds; then the
conversation exists under the `conversation_id` the message reported, its `source` is the admin's message
(`source.id` = the message id, `delivered_as: admin_initiated`), and the reply is a `comment` part authored by the
user. Parts are returned only when one conversation is retrieved (GET /conversations/{id}), not by search. A
conversation rating (CSAT) is a `conversation_rating` of 1-5 with a remark; search finds it by
`conversation_rating.score`, `.replied_at`, `.requested_at` and `.contact_id` (2.11's rating object shows
`rating`, `remark`, `created_at` = when it was requested, `contact` and `teammate`).

Tests and the demo drive these as the customer would (`reply_to_message`, `rate_conversation`); the HTTP layer
serves what results.
"""

from __future__ import annotations

from typing import Any

from sandbox.intercom.values import HIDDEN, ApiError


class Replies:
    """Mixin of Workspace: replies to admin messages, conversation ratings, and how a conversation is served."""

    def reply_to_message(self, message_id: str, text: str, at: int | None = None) -> dict:
        """The recipient of message `message_id` replies with `text`: the conversation starts (or grows)."""
        with self.lock:
            message = next((m for m in self.messages if m["id"] == str(message_id)), None)
            if message is None:
                raise ApiError(404, "not_found", "Message Not Found")
            contact = self.get_contact(message["to"])
            when = self.now() if at is None else int(at)
            conversation = self.conversations.get(message["conversation_id"])
            if conversation is None:
                conversation = self._admin_conversation(message, contact)
            conversation[HIDDEN + "parts"].append(self._part(len(conversation[HIDDEN + "parts"]), text, contact, when))
            conversation.update(updated_at=when, open=True, state="open", read=False, waiting_since=when)
            contact["last_replied_at"] = when
            return conversation

    def _admin_conversation(self, message: dict, contact: dict) -> dict:
        admin = next(a for a in self.admins if a["id"] == message["from"])
        conversation = {
            "type": "conversation", "id": message["conversation_id"], "title": None,
            "created_at": message["created_at"], "updated_at": message["created_at"], "waiting_since": None,
            "snoozed_until": None, "open": False, "state": "closed", "read": True, "priority": "not_priority",
            "admin_assignee_id": None, "team_assignee_id": None, "tags": {"type": "tag.list", "tags": []},
            "source": {
                "type": "conversation" if message["message_type"] == "inapp" else "email", "id": message["id"],
                "delivered_as": "admin_initiated", "subject": message["subject"], "body": message["body"],
                "author": {"type": "admin", "id": admin["id"], "name": admin["name"], "email": admin["email"]},
                "attachments": [], "url": None, "redacted": False,
            },
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": contact["id"], "external_id": contact.get("external_id")}]},
            "teammates": {"type": "admin.list", "teammates": []}, "custom_attributes": {},
            "topics": {"type": "topic.list", "topics": [], "total_count": 0},
            "ai_agent_participated": False, HIDDEN + "parts": [],
        }  # fmt: skip
        self.conversations[conversation["id"]] = conversation
        self._sequence(conversation["id"])
        return conversation

    @staticmethod
    def _part(index: int, text: str, contact: dict, when: int) -> dict:
        return {
            "type": "conversation_part", "id": str(900_000 + index), "part_type": "comment", "body": f"<p>{text}</p>",
            "created_at": when, "updated_at": when, "notified_at": when,
            "author": {"type": "user", "id": contact["id"], "name": contact.get("name") or "",
                       "email": contact.get("email") or ""},
            "attachments": [], "external_id": None, "redacted": False,
        }  # fmt: skip

    def rate_conversation(self, conversation_id: str, rating: int, remark: str = "", at: int | None = None) -> dict:
        """The conversation's contact rates it (CSAT, 1-5)."""
        if not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ApiError(400, "parameter_invalid", "rating must be between 1 and 5", "rating")
        with self.lock:
            conversation = self.get_conversation(conversation_id)
            contact = conversation["contacts"]["contacts"][0]
            when = self.now() if at is None else int(at)
            conversation["conversation_rating"] = {
                "rating": rating, "remark": remark, "created_at": conversation["updated_at"],
                "contact": {"type": "contact", "id": contact["id"], "external_id": contact.get("external_id")},
                "teammate": {"type": "admin", "id": self.admins[0]["id"]},
            }  # fmt: skip
            conversation[HIDDEN + "rating_replied_at"] = when
            conversation["updated_at"] = when
            return conversation

    def get_conversation(self, conversation_id: str) -> dict:
        conversation = self.conversations.get(str(conversation_id))
        if conversation is None:
            raise ApiError(404, "not_found", "Resource Not Found")
        return conversation

    @staticmethod
    def render_conversation(conversation: dict, with_parts: bool = False) -> dict:
        """A conversation as the API serves it: parts only when retrieved on its own (at most the last 500)."""
        out: dict[str, Any] = {k: v for k, v in conversation.items() if not k.startswith(HIDDEN)}
        if with_parts:
            parts = conversation.get(HIDDEN + "parts", [])[-500:]
            out["conversation_parts"] = {"type": "conversation_part.list", "conversation_parts": parts,
                                         "total_count": len(parts)}  # fmt: skip
        return out
