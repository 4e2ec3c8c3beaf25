"""Webhook endpoints: verify the vendor's signature, store the raw events, answer at once, process later.

A refused request costs a log row of reason, source, size and hash (never its body), within a per-source budget
(app/web/throttle.py); bad input of any kind is a 4xx with the reason, never a 500.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from app.web import context
from app.webhook_events.processing import InProcessCoalescer, RecentlyScheduled, schedule_processing_on_redis
from app.webhook_events.store import record_events, record_refusal
from connectors.hubspot import webhooks as hubspot
from connectors.intercom import webhooks as intercom
from connectors.salesforce import webhooks as salesforce
from connectors.webhook_common import VendorEvent, WebhookMalformed, WebhookRejected

log = logging.getLogger(__name__)
webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
_coalescer = InProcessCoalescer()
_recently = RecentlyScheduled()
# After Redis failed to answer, requests skip it for a while: a frozen Redis costs one request its socket timeout,
# not every request; the events wait in the store for the scheduler's sweep or the next run.
_redis_pause = RecentlyScheduled(seconds=10)
# By name, so web workers never import the scoring stack (pandas, scikit-learn): it would double their memory.
PROCESSING_JOB = "app.jobs.process_webhooks_job"


def _schedule_processing() -> None:
    """One processing run for a burst of events; with Redis down the events wait for the scheduler's sweep."""
    settings = context.settings()
    if not settings.redis_url:
        from app.jobs import process_webhooks

        engine = context.engine()
        _coalescer.schedule(settings.webhook_coalesce_seconds, lambda: process_webhooks(settings, engine))
        return
    if _redis_pause.fresh():
        return
    try:
        schedule_processing_on_redis(context.redis(), context.score_queue(), settings.webhook_coalesce_seconds,
                                     PROCESSING_JOB, _recently)  # fmt: skip
    except Exception:  # noqa: BLE001 - Redis unreachable: the events are stored and will be picked up
        _redis_pause.mark()
        log.warning("could not schedule webhook processing; events wait in the store", exc_info=True)


def _refuse(vendor: str, status: str, code: int, reason: str, body: bytes, answer: Response | None = None) -> Response:
    """Log a refused request by its digest and answer `code` — or 429 when its source is past its refusal budget."""
    source = request.remote_addr
    wait = context.refusals().take(source or "")
    if wait:
        retry = context.refusals().retry_after(wait)
        return Response("too many refused requests\n", 429, {"Retry-After": retry}, mimetype="text/plain")
    record_refusal(context.engine(), vendor, status, reason, body, source)
    return answer or Response(f"{status}: {reason}\n", status=code, mimetype="text/plain")


def _ignore(vendor: str, reason: str, body: bytes) -> None:
    """A verified request we do not act on (another org or portal): logged, by digest, and let go."""
    record_refusal(context.engine(), vendor, "ignored", reason, body, request.remote_addr)


def _handle(vendor: str, secret: str | None, verify: Callable[[bytes], None], parse: Callable[[bytes], list],
            tenant: str | None, ok: Callable[[], Response]) -> Response:  # fmt: skip
    body = request.get_data(cache=False)
    if not secret:
        return _refuse(vendor, "rejected", 401, f"{vendor} webhooks are not configured (no secret)", body)
    try:
        verify(body)
    except WebhookRejected as error:
        return _refuse(vendor, "rejected", 401, str(error), body)
    try:
        events: list[VendorEvent] = parse(body)
    except WebhookMalformed as error:
        return _refuse(vendor, "malformed", 400, str(error), body)
    except WebhookRejected as error:  # signed, but for another org or portal: logged and let go
        _ignore(vendor, str(error), body)
        return ok()
    foreign = [e for e in events if tenant and e.tenant and e.tenant != tenant]
    if foreign:
        _ignore(vendor, f"unknown tenant {foreign[0].tenant}", body)
        log.warning("%s webhook from unknown tenant %s ignored", vendor, foreign[0].tenant)
        events = [e for e in events if e not in foreign]
    intake = record_events(context.engine(), vendor, events, context.settings().store_wait_seconds)
    if intake.new:
        _schedule_processing()
    return ok()


def _no_content() -> Response:
    return Response(status=204)


@webhooks.post("/hubspot")
def hubspot_events() -> Response:
    settings = context.settings()
    uri = (settings.public_url.rstrip("/") + request.full_path.rstrip("?")) if settings.public_url else request.url
    return _handle(
        "hubspot", settings.hubspot_client_secret,
        lambda body: hubspot.verify(settings.hubspot_client_secret, request.method, uri, body, request.headers,
                                    allow_legacy=settings.hubspot_allow_legacy_signatures),
        hubspot.parse, settings.hubspot_portal_id, _no_content,
    )  # fmt: skip


@webhooks.post("/intercom")
def intercom_notifications() -> Response:
    settings = context.settings()

    def parse(body: bytes) -> list[VendorEvent]:
        event = intercom.parse(body)
        return [] if event.kind == intercom.PING_TOPIC else [event]

    return _handle(
        "intercom", settings.intercom_client_secret,
        lambda body: intercom.verify(settings.intercom_client_secret, body, request.headers),
        parse, settings.intercom_app_id, _no_content,
    )  # fmt: skip


def _ack() -> Response:
    return Response(salesforce.ACK, status=200, mimetype="text/xml")


def _soap_fault(code: int, reason: str) -> Response:
    """How a SOAP endpoint refuses a message: a Client fault, which Salesforce shows in its outbound queue."""
    fault = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{salesforce.SOAP_NS}">'
        f"<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{escape(reason)}"
        "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(fault, status=code, mimetype="text/xml")


@webhooks.post("/salesforce", defaults={"token": None})
@webhooks.post("/salesforce/<token>")
def salesforce_outbound_message(token: str | None) -> Response:
    """Outbound Messages carry no signature: the secret token in the endpoint URL authenticates them, checked before
    the body is parsed, and the sending org's id must be the connected org's; the ack stops resends."""
    settings = context.settings()
    body = request.get_data(cache=False)

    def refuse(status: str, code: int, reason: str) -> Response:
        return _refuse("salesforce", status, code, reason, body, _soap_fault(code, reason))

    expected = settings.salesforce_outbound_token
    if not expected or not settings.salesforce_org_id:
        return refuse("rejected", 401, "Outbound Messages are not configured (SALESFORCE_OUTBOUND_TOKEN, _ORG_ID)")
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        return refuse("rejected", 401, "the endpoint URL's token is missing or wrong")
    try:
        events = salesforce.parse_outbound(body, settings.salesforce_org_id)
    except WebhookMalformed as error:
        return refuse("malformed", 400, str(error))
    except WebhookRejected as error:  # another org: acknowledged so it stops resending, and logged
        _ignore("salesforce", str(error), body)
        return _ack()
    if record_events(context.engine(), "salesforce", events, settings.store_wait_seconds).new:
        _schedule_processing()
    return _ack()


@webhooks.post("/salesforce/flow")
def salesforce_flow_callout() -> Response:
    settings = context.settings()
    return _handle(
        "salesforce", settings.salesforce_callout_secret,
        lambda body: salesforce.verify_flow(settings.salesforce_callout_secret, body, request.headers),
        lambda body: salesforce.parse_flow(body, settings.salesforce_org_id or ""), None, _no_content,
    )  # fmt: skip
