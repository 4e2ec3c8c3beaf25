"""Acme's sandbox: a tiny REST API over an in-memory book of companies, served on loopback like the real vendors'.

    GET  /v1/companies?since=&after=&limit=&fields=   companies changed at or after `since`, oldest change first,
                                                      a page at a time (`next` is the cursor of the following one)
    GET  /v1/companies?ids=a,b&fields=                just those companies
    POST /v1/companies/batch-update                   {"updates": [{"id", "fields"}]} -> a result per company
    POST /v1/tasks                                    {"company_id", "title", "dedupe_key", ...}, once per key
    GET  /v1/fields, POST /v1/fields                  the company fields there are, and adding one

Every call needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, abort, jsonify, request

from sandbox.server import RunningSandbox, start_server

MAX_PAGE = 25
BUILT_IN_FIELDS = ("id", "account_key", "name", "domain", "updated_at", "archived")


@dataclass
class AcmeState:
    token: str = "acme-sandbox-token"
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_fields: set[str] = field(default_factory=set)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # by dedupe key
    api_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_book(cls, book: Any) -> AcmeState:
        stamp = datetime.now(UTC).isoformat()
        companies = {
            f"acme-{n}": {"id": f"acme-{n}", "account_key": key, "name": name, "domain": domain, "updated_at": stamp,
                          "archived": False}
            for n, (key, name, domain) in enumerate(book.accounts[["key", "name", "domain"]].itertuples(index=False))
        }  # fmt: skip
        return cls(companies=companies)

    def changed(self, since: str | None) -> list[dict[str, Any]]:
        records = [c for c in self.companies.values() if since is None or c["updated_at"] >= since]
        return sorted(records, key=lambda c: (c["updated_at"], c["id"]))


def _selected(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return dict(record)
    return {name: record.get(name) for name in {"id", *fields.split(",")}}


def create_app(state: AcmeState) -> Flask:
    app = Flask(__name__)

    @app.before_request
    def authenticate() -> None:
        if request.headers.get("Authorization") != f"Bearer {state.token}":
            abort(401)
        with state.lock:
            state.api_calls += 1

    @app.get("/v1/companies")
    def list_companies():
        fields = request.args.get("fields")
        if "ids" in request.args:
            wanted = request.args["ids"].split(",")
            return jsonify(results=[_selected(state.companies[i], fields) for i in wanted if i in state.companies])
        records = state.changed(request.args.get("since"))
        start = int(request.args.get("after") or 0)
        end = start + min(int(request.args.get("limit", MAX_PAGE)), MAX_PAGE)
        page = [_selected(r, fields) for r in records[start:end]]
        return jsonify(results=page, next=str(end) if end < len(records) else None)

    @app.post("/v1/companies/batch-update")
    def batch_update():
        results = []
        for update in request.get_json()["updates"]:
            company, unknown = state.companies.get(update["id"]), set(update["fields"]) - state.custom_fields
            if company is None or unknown:
                error = "no such company" if company is None else f"unknown fields {sorted(unknown)}"
                results.append({"id": update["id"], "ok": False, "error": error})
                continue
            company.update(update["fields"], updated_at=datetime.now(UTC).isoformat())
            results.append({"id": update["id"], "ok": True})
        return jsonify(results=results)

    @app.post("/v1/tasks")
    def create_task():
        body = request.get_json()
        if body["company_id"] not in state.companies:
            return jsonify(error="no such company"), 404
        with state.lock:
            task = state.tasks.setdefault(body["dedupe_key"], {**body, "id": f"task-{len(state.tasks)}"})
        return jsonify(task), 201

    @app.get("/v1/fields")
    def list_fields():
        return jsonify(fields=sorted({*BUILT_IN_FIELDS, *state.custom_fields}))

    @app.post("/v1/fields")
    def add_field():
        state.custom_fields.add(request.get_json()["name"])
        return jsonify(ok=True), 201

    return app


class AcmeSandbox(RunningSandbox[AcmeState]):
    def settings_env(self) -> dict[str, str]:
        return {"ACME_BASE_URL": self.base_url, "ACME_TOKEN": self.state.token}


def start_sandbox(book: Any, *, host: str = "127.0.0.1", port: int = 0) -> AcmeSandbox:
    """Serve an Acme account seeded with one company per account of `book` on a loopback port."""
    state = AcmeState.from_book(book)
    return AcmeSandbox(state, start_server(create_app(state), host, port))
