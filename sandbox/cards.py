"""The requests the three CRMs send to our card endpoints, built the way their documentation describes.

* HubSpot `hubspot.fetch()` from an app card: HubSpot appends `userId`, `portalId`, `userEmail` and `appId` to the
  URL, sends a JSON body for POST, and signs with `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret,
  method + URI (URL-decoded) + body + timestamp)) and `X-HubSpot-Request-Timestamp` (ms).
* Intercom Canvas Kit: initialize `{workspace_id, workspace_region, admin, card_creation_options, context,
  conversation, contact}`; submit adds `component_id`, `current_canvas`, `input_values`, `user`; the raw body is
  signed with `X-Body-Signature` = hex(HMAC-SHA256(client secret, body)). Contact and conversation objects come
  from the Intercom sandbox, so they have the API's own shape.
* Salesforce: our Apex class's callout through the Named Credential: JSON with `X-CSE-Timestamp` (s) and
  `X-CSE-Signature` = "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).

The signing here is written from the vendors' descriptions, not imported from connectors/, so a test that sends
these requests checks our verification against the documented scheme rather than against itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from sandbox.intercom.workspace import APP_ID, Workspace


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def hubspot_fetch(
    secret: str,
    url: str,
    *,
    portal_id: int,
    method: str = "GET",
    body: dict | None = None,
    user_id: int = 7001,
    user_email: str = "csm@example.com",
    app_id: int = 4242,
    timestamp_ms: int | None = None,
) -> SignedRequest:
    """What arrives when an app card calls `hubspot.fetch(url, {method, body})` in portal `portal_id`."""
    params = urlencode({"userId": user_id, "portalId": portal_id, "userEmail": user_email, "appId": app_id})
    full = f"{url}{'&' if urlsplit(url).query else '?'}{params}"
    raw = json.dumps(body).encode() if body is not None else b""
    stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    signed = method.upper().encode() + unquote(full).encode() + raw + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return SignedRequest(method.upper(), full, headers, raw)


@dataclass
class CanvasKit:
    """Intercom's side of an inbox app: the workspace the teammate is in and the app's client secret."""

    workspace: Workspace
    secret: str
    workspace_id: str = APP_ID

    def _signed(self, url: str, payload: dict) -> SignedRequest:
        raw = json.dumps(payload).encode()
        signature = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        return SignedRequest("POST", url, {"X-Body-Signature": signature, "Content-Type": "application/json"}, raw)

    def _context(self, contact_id: str, conversation_id: str) -> dict[str, Any]:
        ws = self.workspace
        return {
            "workspace_id": self.workspace_id,
            "workspace_region": "us",
            "admin": ws.admins[0],
            "context": {"conversation_id": int(conversation_id), "location": "conversation", "locale": "en"},
            "conversation": ws.conversations[conversation_id],
            "contact": ws.render_contact(ws.get_contact(contact_id)),
        }

    def initialize_body(self, contact_id: str, conversation_id: str) -> dict:
        return {**self._context(contact_id, conversation_id), "card_creation_options": {}}

    def initialize(self, url: str, contact_id: str, conversation_id: str) -> SignedRequest:
        """The request Intercom sends when a teammate opens the app in a conversation's details."""
        return self._signed(url, self.initialize_body(contact_id, conversation_id))

    def submit_body(self, contact_id: str, conversation_id: str, canvas: dict, component_id: str,
                    input_values: dict | None = None) -> dict:  # fmt: skip
        context = self._context(contact_id, conversation_id)
        return {
            **context, "component_id": component_id, "current_canvas": canvas, "input_values": input_values or {},
            "user": context["contact"],
        }  # fmt: skip

    def submit(self, url: str, contact_id: str, conversation_id: str, canvas: dict, component_id: str,
               input_values: dict | None = None) -> SignedRequest:  # fmt: skip
        """The request Intercom sends when a teammate clicks a submit button on `canvas` (the current one)."""
        return self._signed(url, self.submit_body(contact_id, conversation_id, canvas, component_id, input_values))


def conversation_with_company(ws: Workspace, company_key: str, company: str, email: str, name: str, text: str):
    """A contact of a company writing in: (contact id, conversation id, company id) in the Intercom sandbox."""
    record = ws.add_company({"company_id": company_key, "name": company})
    contact = ws.add_contact({"email": email, "name": name})
    ws.attach_company(contact["id"], record["id"])
    return contact["id"], ws.add_conversation(contact["id"], text)["id"], record["id"]


def salesforce_callout(
    secret: str, url: str, *, org_id: str, account_id: str, action: dict | None = None,
    user: str = "csm@example.com", timestamp: int | None = None,
) -> SignedRequest:  # fmt: skip
    """What CseCardController's callout sends through the CSE_Backend Named Credential."""
    raw = json.dumps({"orgId": org_id, "accountId": account_id, "user": user, "action": action}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {"X-CSE-Timestamp": stamp, "X-CSE-Signature": f"sha256={digest}", "Content-Type": "application/json"}
    return SignedRequest("POST", url, headers, raw)
