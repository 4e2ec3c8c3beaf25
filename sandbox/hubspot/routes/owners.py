"""CRM v3 owners: list (by email, paged) and read one; write-back resolves task owners through them."""

from __future__ import annotations

from flask import Flask, jsonify, request

from sandbox.hubspot import schema
from sandbox.hubspot.http import (
    bool_arg,
    int_arg,
)
from sandbox.hubspot.state import HubSpotState, InputError


def register(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/owners")
    @app.get("/crm/v3/owners/")
    def list_owners():
        limit = int_arg("limit", 100, schema.OWNERS_MAX_LIMIT)
        archived = bool_arg("archived")
        email = request.args.get("email")
        after = request.args.get("after")
        with state.lock:
            owners = sorted((o for o in state.owners.values() if o["archived"] == archived), key=lambda o: int(o["id"]))
        if email:
            owners = [o for o in owners if o["email"].lower() == email.lower()]
        if after:
            owners = [o for o in owners if int(o["id"]) >= int(after)]
        page, rest = owners[:limit], owners[limit:]
        body: dict = {"results": page}
        if rest:
            body["paging"] = {"next": {"after": rest[0]["id"]}}
        return jsonify(body)

    @app.get("/crm/v3/owners/<owner_id>")
    def get_owner(owner_id: str):
        owner = state.owners.get(owner_id)
        if owner is None:
            raise InputError("resource not found", category="OBJECT_NOT_FOUND", status=404)
        return jsonify(owner)
