"""Our custom fields in a Salesforce org: shipped as metadata an admin deploys, verified through describe.

Salesforce's REST API cannot create fields (that takes the Metadata API and an admin's consent), so connecting
checks that every field the push mapping writes, and the Task dedupe key, exist and are writable.
"""

from __future__ import annotations

from pathlib import Path

from connectors.mapping import Mapping
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.push import TASK_DEDUPE_FIELD

METADATA_DIR = Path(__file__).with_name("metadata")
MISSING_FIELDS_HELP = f"deploy the metadata in {METADATA_DIR} (Salesforce's API cannot create fields)"
# Activity fields appear on Task in describe.
DESCRIBED_AS = {"Activity": "Task"}


def shipped_fields() -> dict[str, set[str]]:
    """sObject → custom fields defined in the shipped metadata."""
    shipped: dict[str, set[str]] = {}
    for path in sorted(METADATA_DIR.glob("objects/*/fields/*.field-meta.xml")):
        obj = DESCRIBED_AS.get(path.parent.parent.name, path.parent.parent.name)
        shipped.setdefault(obj, set()).add(path.name.removesuffix(".field-meta.xml"))
    return shipped


def required_fields(push_mapping: Mapping) -> dict[str, set[str]]:
    """What write-back needs: the push mapping's targets on its object, plus the Task dedupe key."""
    return {push_mapping.object: {spec.to for spec in push_mapping.fields.values()}, "Task": {TASK_DEDUPE_FIELD}}


def missing_fields(client: SalesforceClient, push_mapping: Mapping) -> dict[str, set[str]]:
    """Required fields that the org's describe does not show as updateable (empty when all is in place)."""
    missing: dict[str, set[str]] = {}
    for obj, names in required_fields(push_mapping).items():
        described = {f["name"]: f for f in client.describe(obj)["fields"]}
        absent = {n for n in names if n not in described or not described[n].get("updateable", True)}
        if absent:
            missing[obj] = absent
    return missing
