"""Our company fields in an Acme account, derived from the push mapping (created idempotently)."""

from __future__ import annotations

from connectors.mapping import Mapping
from tests.fake_vendor.client import AcmeClient

MISSING_FIELDS_HELP = "create them with install_fields (tests/fake_vendor/fields.py)"


def missing_fields(client: AcmeClient, push_mapping: Mapping) -> dict[str, set[str]]:
    existing = set(client.request("GET", "fields")["fields"])
    absent = {spec.to for spec in push_mapping.fields.values()} - existing
    return {push_mapping.object: absent} if absent else {}


def install_fields(client: AcmeClient, push_mapping: Mapping) -> list[str]:
    """Create the missing company fields; returns "<object>.<field>" for each one created."""
    created = []
    for name in sorted(missing_fields(client, push_mapping).get(push_mapping.object, set())):
        client.request("POST", "fields", json={"name": name})
        created.append(f"{push_mapping.object}.{name}")
    return created
