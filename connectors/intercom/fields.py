"""Our company data attributes in an Intercom workspace, created from the push mapping (idempotently)."""

from __future__ import annotations

from connectors.intercom.client import IntercomClient
from connectors.mapping import Mapping

# Push mapping type → Intercom data attribute type.
DATA_TYPES = {"number": "float", "integer": "integer", "string": "string", "enum": "string", "date": "date",
              "datetime": "date", "boolean": "boolean"}  # fmt: skip


def wanted_attributes(push_mapping: Mapping) -> dict[str, str]:
    return {spec.to: DATA_TYPES[spec.type] for spec in push_mapping.fields.values()}


def _existing(client: IntercomClient) -> set[str]:
    body = client.request("GET", "data_attributes", params={"model": "company"})
    return {a["name"] for a in (body or {}).get("data") or [] if a.get("model") == "company"}


def missing_fields(client: IntercomClient, push_mapping: Mapping) -> dict[str, set[str]]:
    absent = set(wanted_attributes(push_mapping)) - _existing(client)
    return {"company": absent} if absent else {}


def install_fields(client: IntercomClient, push_mapping: Mapping) -> list[str]:
    """Create the company data attributes that are missing; returns "company.<name>" for each one created."""
    existing = _existing(client)
    created = []
    for name, data_type in wanted_attributes(push_mapping).items():
        if name not in existing:
            client.request("POST", "data_attributes", json_body={"name": name, "model": "company",
                                                                  "data_type": data_type})  # fmt: skip
            created.append(f"company.{name}")
    return created
