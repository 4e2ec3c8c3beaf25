"""The Intercom REST API (the 2.11 shapes) over a Workspace, as a Flask app.

Every request goes through the same gate, in the order the real API applies it: injected faults, Bearer auth
(401 with Intercom's error list), the `Intercom-Version` header (optional; unknown versions are refused), then
the rate limit. Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (UNIX
seconds when the window resets). Intercom spreads a private app's 10,000 calls a minute over 10-second windows,
so the default here is 1,666 calls per 10 s; a 429 carries the same headers and an `error.list` body.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, jsonify, request

from sandbox.faults import Faults
from sandbox.intercom.values import COMPANY_LIST_DEFAULT_PER_PAGE, ApiError
from sandbox.intercom.workspace import Workspace

# Versions the Intercom-Version header accepts (the 2.11 spec's enum plus later numbered releases).
VERSIONS = frozenset(["1.0", "1.1", "1.2", "1.3", "1.4", *(f"2.{i}" for i in range(17)), "Preview", "Unstable"])
DEFAULT_VERSION = "2.11"


@dataclass
class RateLimiter:
    """Fixed windows of `window_seconds`; `limit` calls per window (Intercom: 10,000/min in 10 s slices)."""

    limit: int = 1666
    window_seconds: int = 10
    clock: Callable[[], float] = time.time
    _window: int = -1
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> tuple[bool, int, int]:
        """Count one call; returns (allowed, remaining, reset epoch seconds)."""
        now = self.clock()
        window = int(now // self.window_seconds)
        with self._lock:
            if window != self._window:
                self._window, self._used = window, 0
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
            remaining = self.limit - self._used
        return allowed, remaining, (window + 1) * self.window_seconds


@dataclass
class IntercomState:
    """What a test holds on to: the workspace, the fault switches and the rate limiter of one sandbox."""

    workspace: Workspace = field(default_factory=Workspace)
    faults: Faults = field(default_factory=Faults)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=100_000))  # (method, path), latest


def error_body(code: str, message: str, field_name: str | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if field_name:
        error["field"] = field_name
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [error]}


def _error(status: int, code: str, message: str, field_name: str | None = None) -> Response:
    response = jsonify(error_body(code, message, field_name))
    response.status_code = status
    return response


def create_app(state: IntercomState | Workspace | None = None) -> Flask:
    """The sandbox app over `state` (a bare Workspace gets default faults and rate limits)."""
    if state is None:
        state = IntercomState()
    elif isinstance(state, Workspace):
        state = IntercomState(workspace=state)
    ws = state.workspace
    app = Flask("intercom_sandbox")
    app.config["intercom_state"] = state

    @app.before_request
    def gate() -> Response | None:
        state.requests.append((request.method, request.path))
        g.rate = None
        fault = state.faults.next_fault()
        if fault == "rate_limited":
            reset = math.ceil(time.time()) + max(state.faults.retry_after_seconds, 0)
            g.rate = (state.limiter.limit, 0, reset)
            return _error(429, "rate_limit_exceeded", f"Exceeded rate limit of {state.limiter.limit} in "
                          f"{state.limiter.window_seconds}_seconds")  # fmt: skip
        if fault == "server_error":
            status = state.faults.server_error_status
            if status == 500 and request.path.startswith("/companies/scroll"):
                return _error(500, "server_error", "Request failed due to an internal network error. Please "
                              "restart the scroll operation.")  # fmt: skip
            return _error(status, "server_error" if status == 500 else "service_unavailable", "Server Error")
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if fault == "expired_session" or token not in ws.tokens:
            return _error(401, "unauthorized", "Access Token Invalid")
        version = request.headers.get("Intercom-Version", DEFAULT_VERSION)
        if version not in VERSIONS:
            return _error(400, "intercom_version_invalid", f"The requested version {version!r} does not exist")
        ws.versions_seen[version] += 1
        allowed, remaining, reset = state.limiter.take()
        g.rate = (state.limiter.limit, remaining, reset)
        if not allowed:
            return _error(429, "rate_limit_exceeded", f"Exceeded rate limit of {state.limiter.limit} in "
                          f"{state.limiter.window_seconds}_seconds")  # fmt: skip
        return None

    @app.after_request
    def rate_headers(response: Response) -> Response:
        rate = getattr(g, "rate", None)
        if rate is not None:
            limit, remaining, reset = rate
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = str(max(remaining, 0))
            response.headers["X-RateLimit-Reset"] = str(reset)
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _error(error.status, error.code, error.message, error.field)

    @app.errorhandler(404)
    def not_found(_error_: Exception) -> Response:
        return _error(404, "not_found", "Resource Not Found")

    @app.errorhandler(405)
    def not_allowed(_error_: Exception) -> Response:
        return _error(405, "method_not_allowed", "Method Not Allowed")

    def body() -> Any:
        data = request.get_json(silent=True)
        if data is None and request.data:
            raise ApiError(400, "parameter_invalid", "The request body is not valid JSON")
        return data if data is not None else {}

    def failing(*ids: Any) -> None:
        """A write aimed at a record listed in faults.partial_failure_ids fails on its own (per-record errors)."""
        if any(str(i) in state.faults.partial_failure_ids for i in ids if i is not None):
            raise ApiError(422, "parameter_invalid", "Simulated record-level failure")

    def int_arg(name: str, default: int) -> int:
        try:
            return int(request.args.get(name, default))
        except ValueError:
            raise ApiError(400, "parameter_invalid", f"{name} must be an integer", name) from None

    # --- admins --------------------------------------------------------------------------------------------------

    @app.get("/me")
    def me() -> Response:
        app_info = {"type": "app", "id_code": "cse0sandbox", "name": "CSE Sandbox", "region": "US", "timezone": "UTC",
                    "created_at": 1_700_000_000, "identity_verification": False}  # fmt: skip
        avatar = {"type": "avatar", "image_url": None}
        return jsonify({**ws.admins[0], "email_verified": True, "avatar": avatar, "app": app_info})

    @app.get("/admins")
    def admins() -> Response:
        return jsonify({"type": "admin.list", "admins": ws.admins})

    # --- companies -----------------------------------------------------------------------------------------------

    @app.get("/companies")
    def retrieve_companies() -> Response:
        key, name = request.args.get("company_id"), request.args.get("name")
        if key is not None or name is not None:
            with ws.lock:
                found = [
                    ws.render_company(c)
                    for c in ws.companies.values()
                    if (key is None or c["company_id"] == key) and (name is None or c["name"] == name)
                ]
            if not found:
                raise ApiError(404, "company_not_found", "Company Not Found")
            pages = {"type": "pages", "page": 1, "per_page": 15, "total_pages": 1}
            return jsonify({"type": "list", "data": found, "pages": pages, "total_count": len(found)})
        per_page = int_arg("per_page", COMPANY_LIST_DEFAULT_PER_PAGE)
        return jsonify(ws.list_companies(int_arg("page", 1), per_page, "desc"))

    @app.post("/companies/list")
    def list_companies() -> Response:
        order = request.args.get("order", "desc")
        per_page = int_arg("per_page", COMPANY_LIST_DEFAULT_PER_PAGE)
        return jsonify(ws.list_companies(int_arg("page", 1), per_page, order))

    @app.get("/companies/scroll")
    def scroll_companies() -> Response:
        return jsonify(ws.scroll_companies(request.args.get("scroll_param") or None))

    @app.post("/companies")
    def upsert_company() -> Response:
        data = body()
        failing(data.get("company_id"))
        with ws.lock:
            return jsonify(ws.render_company(ws.upsert_company(data)))

    @app.get("/companies/<record_id>")
    def get_company(record_id: str) -> Response:
        with ws.lock:
            return jsonify(ws.render_company(ws.get_company(record_id)))

    @app.put("/companies/<record_id>")
    def update_company(record_id: str) -> Response:
        data = body()
        with ws.lock:
            company = ws.get_company(record_id)
            failing(record_id, company["company_id"])
            if "company_id" in data and data["company_id"] != company["company_id"]:
                raise ApiError(400, "parameter_invalid", "company_id cannot be updated", "company_id")
            return jsonify(ws.render_company(ws.update_company(record_id, data)))

    # --- contacts ------------------------------------------------------------------------------------------------

    @app.post("/contacts/search")
    def search_contacts() -> Response:
        return jsonify(ws.search("contacts", body()))

    @app.get("/contacts")
    def list_contacts() -> Response:
        return jsonify(ws.list_contacts(int_arg("per_page", 50), request.args.get("starting_after")))

    @app.post("/contacts")
    def create_contact() -> Response:
        data = body()
        with ws.lock:
            return jsonify(ws.render_contact(ws.add_contact(data)))

    @app.get("/contacts/<record_id>")
    def get_contact(record_id: str) -> Response:
        with ws.lock:
            return jsonify(ws.render_contact(ws.get_contact(record_id)))

    @app.put("/contacts/<record_id>")
    def update_contact(record_id: str) -> Response:
        data = body()
        failing(record_id)
        with ws.lock:
            return jsonify(ws.render_contact(ws.update_contact(record_id, data)))

    @app.post("/contacts/<record_id>/companies")
    def attach_company(record_id: str) -> Response:
        data = body()
        if not data.get("id"):
            raise ApiError(400, "parameter_invalid", "id is required", "id")
        return jsonify(ws.attach_company(record_id, str(data["id"])))

    # --- conversations -------------------------------------------------------------------------------------------

    @app.post("/conversations/search")
    def search_conversations() -> Response:
        return jsonify(ws.search("conversations", body()))

    @app.get("/conversations/<conversation_id>")
    def retrieve_conversation(conversation_id: str) -> Response:
        with ws.lock:
            return jsonify(ws.render_conversation(ws.get_conversation(conversation_id), with_parts=True))

    @app.post("/conversations")
    def create_conversation() -> Response:
        data = body()
        sender = data.get("from") or {}
        if sender.get("type") not in ("user", "lead", "contact") or not sender.get("id"):
            raise ApiError(400, "parameter_invalid", "from must name a user or lead", "from")
        if not data.get("body"):
            raise ApiError(400, "parameter_invalid", "Body is required", "body")
        conversation = ws.add_conversation(str(sender["id"]), str(data["body"]))
        return jsonify({"type": "user_message", "id": conversation["source"]["id"],
                        "created_at": conversation["created_at"], "subject": "", "body": conversation["source"]["body"],
                        "message_type": "inapp", "conversation_id": conversation["id"]})  # fmt: skip

    # --- data attributes -----------------------------------------------------------------------------------------

    @app.get("/data_attributes")
    def list_data_attributes() -> Response:
        model = request.args.get("model")
        if model is not None and model not in ("contact", "company", "conversation"):
            raise ApiError(400, "parameter_invalid", "model must be contact, company or conversation", "model")
        archived = request.args.get("include_archived", "false").lower() == "true"
        with ws.lock:
            data = [
                a for a in ws.data_attributes
                if (model is None or a["model"] == model) and (archived or not a["archived"])
            ]  # fmt: skip
        return jsonify({"type": "list", "data": data})

    @app.post("/data_attributes")
    def create_data_attribute() -> Response:
        return jsonify(ws.create_data_attribute(body()))

    # --- events --------------------------------------------------------------------------------------------------

    @app.post("/events")
    def submit_event() -> Response:
        data = body()
        failing(data.get("id"), data.get("user_id"), data.get("email"))
        ws.submit_event(data)
        return Response(status=202)

    @app.get("/events")
    def list_events() -> Response:
        return jsonify(ws.list_events(request.args, request.host_url))

    # --- messages ------------------------------------------------------------------------------------------------

    @app.post("/messages")
    def create_message() -> Response:
        data = body()
        failing((data.get("to") or {}).get("id"))
        return jsonify(ws.create_message(data))

    return app
