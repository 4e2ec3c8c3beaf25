"""Card endpoints for the CRM surfaces: each verifies its vendor's signature and tenant, finds the account the open
record resolved to, performs a posted action and answers the (updated) card in the vendor's shape.

- GET/POST /cards/hubspot: app card's `hubspot.fetch()`; X-HubSpot-Signature-v3 (5 min); portalId = HUBSPOT_PORTAL_ID
- POST /cards/intercom/{initialize,submit}: Canvas Kit inbox app; X-Body-Signature; workspace_id = INTERCOM_APP_ID
- POST /cards/salesforce: Apex via a Named Credential; X-CSE-Signature (5 min); orgId = SALESFORCE_ORG_ID

Refusals: 401 bad/missing/stale signature or no secret configured, 403 another portal/workspace/org, 400 unreadable
request or action, 404 record not linked to an account (Intercom gets a one-line canvas instead: it must render).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from flask import Blueprint, Response, request
from sqlalchemy import false, or_, select

from app.cards.actions import ActionRefused, parse_action, perform
from app.cards.model import build_card, resolve_account
from app.programs.catalog import offered_programs, program_titles, programs_dir_of
from app.store.models import Account, Contact, RecordLink
from app.web import context
from connectors.hubspot import cards as hubspot_cards
from connectors.hubspot.webhooks import verify_v3
from connectors.intercom import canvas
from connectors.salesforce import cards as salesforce_cards
from connectors.salesforce.webhooks import verify_flow
from connectors.webhook_common import WebhookMalformed, WebhookRejected

log = logging.getLogger(__name__)
cards = Blueprint("cards", __name__, url_prefix="/cards")


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _json(payload: dict, status: int = 200, started: float | None = None) -> Response:
    response = Response(json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json")
    if started is not None:  # what bench/cards.py reads: the server's own time for the card
        response.headers["Server-Timing"] = f"card;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


def _signed(secret: str | None, vendor: str, verify: Callable[[bytes], None]) -> bytes:
    """The raw body once the request is proven to come from the vendor; Refused(401) otherwise."""
    body = request.get_data(cache=False)
    if not secret:
        raise Refused(401, f"{vendor} cards are not configured (no secret)")
    try:
        verify(body)
    except WebhookRejected as error:
        raise Refused(401, str(error)) from None
    return body


def _card_response(where, action: dict | None, actor: str, source: str, started: float) -> tuple[dict, str | None]:
    """Perform the action (if any) on the account `where` selects, then build its card; Refused(404/400)."""
    notice = None
    with context.engine().begin() as conn:
        programs = offered_programs(context.settings(), conn)
        account_id = conn.scalar(select(Account.id).where(where).limit(1))
        if account_id is None:
            raise Refused(404, "this record is not linked to an account")
        if action is not None:
            try:
                notice = perform(conn, account_id, parse_action(action, programs), actor, source)
            except ActionRefused as error:
                raise Refused(400, str(error)) from None
        titles = program_titles(programs_dir_of(context.settings()))
        card = build_card(conn, account_id, programs, titles=titles)
    return card, notice


def _refusal(error: Exception) -> Response:
    status = error.status if isinstance(error, Refused) else 400
    log.info("card request refused (%s): %s", status, error)
    return _json({"error": str(error)}, status)


def _public_uri() -> str:
    """The URI HubSpot signed: our public URL behind a proxy (CSE_PUBLIC_URL), else the request's."""
    public = context.settings().public_url
    return public.rstrip("/") + request.full_path.rstrip("?") if public else request.url


@cards.route("/hubspot", methods=["GET", "POST"])
def hubspot_card() -> Response:
    started = time.perf_counter()
    settings = context.settings()
    try:
        secret = settings.hubspot_client_secret
        uri = _public_uri()
        body = _signed(secret, "hubspot", lambda b: verify_v3(secret or "", request.method, uri, b, request.headers))
        fetch = hubspot_cards.parse_fetch(request.method, request.args, body)
        if fetch.portal_id != (settings.hubspot_portal_id or ""):
            raise Refused(403, f"portal {fetch.portal_id} is not the connected portal")
        where = resolve_account("hubspot", "companies", fetch.company_id)
        card, notice = _card_response(where, fetch.action, fetch.user_email, "hubspot", started)
    except (Refused, WebhookMalformed) as error:
        return _refusal(error)
    return _json({"card": card, "notice": notice}, started=started)


def _intercom(submit: bool) -> Response:
    started = time.perf_counter()
    settings = context.settings()
    try:
        secret = settings.intercom_client_secret
        body = _signed(secret, "intercom", lambda b: canvas.verify(secret or "", b, request.headers))
        asked = canvas.parse(body)
        if asked.workspace_id != (settings.intercom_app_id or ""):
            raise Refused(403, f"workspace {asked.workspace_id} is not the connected workspace")
        if submit:
            with context.engine().connect() as conn:
                action = canvas.action_for(asked, offered_programs(settings, conn))
        else:
            action = None
        where = or_(
            resolve_account("intercom", "companies", asked.company_ids[0]) if asked.company_ids else false(),
            Account.id.in_(select(RecordLink.account_id).where(
                RecordLink.vendor == "intercom", RecordLink.object == "contacts",
                RecordLink.external_id == (asked.contact_id or ""))),
            Account.id.in_(select(Contact.account_id).where(Contact.email == (asked.contact_email or ""))),
        )  # fmt: skip
        card, notice = _card_response(where, action, asked.admin, "intercom", started)
    except Refused as error:
        if error.status == 404:
            return _json(canvas.message("This contact is not linked to an account yet."), started=started)
        return _refusal(error)
    except WebhookMalformed as error:
        return _refusal(error)
    return _json(canvas.render(card, notice, action), started=started)


@cards.post("/intercom/initialize")
def intercom_initialize() -> Response:
    return _intercom(submit=False)


@cards.post("/intercom/submit")
def intercom_submit() -> Response:
    return _intercom(submit=True)


@cards.post("/salesforce")
def salesforce_card() -> Response:
    started = time.perf_counter()
    settings = context.settings()
    try:
        secret = settings.salesforce_callout_secret
        body = _signed(secret, "salesforce", lambda b: verify_flow(secret or "", b, request.headers))
        try:
            asked = salesforce_cards.parse(body, settings.salesforce_org_id or "")
        except WebhookRejected as error:
            raise Refused(403, str(error)) from None
        where = resolve_account("salesforce", "Account", asked.account_id)
        card, notice = _card_response(where, asked.action, asked.user, "salesforce", started)
    except (Refused, WebhookMalformed) as error:
        return _refusal(error)
    return _json({"card": card, "notice": notice}, started=started)
