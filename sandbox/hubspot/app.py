"""The HubSpot sandbox's HTTP surface: a Flask app serving the CRM v3/v4 endpoints we use, as HubSpot shapes them.

Request pipeline (every `/crm/` call): fault injection (sandbox.faults) -> Bearer token check (401 with HubSpot's
INVALID_AUTHENTICATION body) -> rate limits (search: per second; everything else: a rolling 10-second budget with
the X-HubSpot-RateLimit-* headers, 429 with HubSpot's RATE_LIMIT body when spent) -> the endpoint. Bodies follow
HubSpot's documented shapes closely enough that the official SDK (`hubspot-api-client`), which validates required
fields, parses every one of them.
"""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, jsonify, request

from sandbox.hubspot import schema
from sandbox.hubspot.http import error_response, input_error_response
from sandbox.hubspot.routes import associations, batch, objects, owners, properties
from sandbox.hubspot.state import HubSpotState, InputError, RequestLogEntry


def create_app(state: HubSpotState) -> Flask:
    """A Flask app serving `state` as a HubSpot portal (start it with sandbox.server.start_server)."""
    app = Flask("hubspot-sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["HUBSPOT_STATE"] = state

    @app.before_request
    def gate():
        g.search = request.path.endswith("/search")
        g.rate_remaining = None
        if not request.path.startswith("/crm/"):
            return None
        fault = state.faults.next_fault()
        if fault == "expired_session":
            return error_response(
                401,
                "The OAuth token used to make this call expired 1 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None:
            return error_response(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if token not in state.config.access_tokens:
            return error_response(
                401,
                "The access token provided is invalid or has been revoked.",
                "INVALID_AUTHENTICATION",
                subCategory="INVALID_TOKEN",
            )
        if fault == "rate_limited":
            return _rate_limited(state, "TEN_SECONDLY_ROLLING", retry_after=state.faults.retry_after_seconds)
        if fault == "server_error":
            return error_response(
                state.faults.server_error_status,
                "Internal error, please try again later.",
                "INTERNAL_ERROR" if state.faults.server_error_status == 500 else "SERVICE_UNAVAILABLE",
            )
        if g.search:
            window = state.search_secondly
            if window is not None and not window.admit()[0]:
                return _rate_limited(state, "SECONDLY", retry_after=None)
            return None
        window = state.ten_secondly
        if window is not None:
            admitted, remaining = window.admit()
            if not admitted:
                return _rate_limited(state, "TEN_SECONDLY_ROLLING", retry_after=None)
            g.rate_remaining = remaining
        return None

    @app.after_request
    def rate_headers(response: Response) -> Response:
        if request.path.startswith("/crm/"):
            state.request_log.append(RequestLogEntry(request.method, request.path, response.status_code))
            window = state.ten_secondly
            if (
                window is not None
                and not getattr(g, "search", False)
                and "X-HubSpot-RateLimit-Max" not in response.headers
            ):
                remaining = g.rate_remaining if getattr(g, "rate_remaining", None) is not None else window.remaining()
                response.headers["X-HubSpot-RateLimit-Max"] = str(window.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(state.config.rate_limit_interval_ms)
                response.headers["X-HubSpot-RateLimit-Daily"] = str(schema.DAILY_LIMIT)
                response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(0, schema.DAILY_LIMIT - len(state.request_log))
                )
        return response

    @app.errorhandler(InputError)
    def on_input_error(exc: InputError):
        return input_error_response(exc)

    @app.errorhandler(404)
    def on_not_found(_exc):
        return error_response(404, "resource not found", "OBJECT_NOT_FOUND")

    @app.errorhandler(405)
    def on_bad_method(_exc):
        return error_response(405, f"Method {request.method} is not allowed on {request.path}", "VALIDATION_ERROR")

    for routes in (objects, batch, associations, properties, owners):
        routes.register(app, state)
    return app


def _rate_limited(state: HubSpotState, policy: str, retry_after: int | None) -> Response:
    """HubSpot's 429: RATE_LIMIT body naming the policy; the ten-secondly one carries the window headers."""
    message = {
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        "SECONDLY": "You have reached your secondly limit.",
    }[policy]
    headers: dict[str, str] = {}
    if policy == "TEN_SECONDLY_ROLLING":
        headers = {
            "X-HubSpot-RateLimit-Max": str(state.config.rate_limit_max or 0),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(state.config.rate_limit_interval_ms),
        }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    response = jsonify(
        {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "category": "RATE_LIMITS",
        }
    )
    response.status_code = 429
    response.headers.update(headers)
    return response


# ----------------------------------------------------------------------------------------------------- objects
