"""Our properties in a HubSpot portal: a "Customer Success Engine" group on companies with the properties the push
mapping writes, and the unique task property that makes task creation idempotent. Creating is idempotent too."""

from __future__ import annotations

from hubspot.crm.properties import Option, PropertyCreate, PropertyGroupCreate

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.push import TASK_DEDUPE_PROPERTY
from connectors.mapping import Mapping

GROUP = "customer_success_engine"
GROUP_LABEL = "Customer Success Engine"
# Push mapping type → HubSpot (type, fieldType).
HUBSPOT_TYPES = {
    "number": ("number", "number"), "integer": ("number", "number"), "string": ("string", "text"),
    "date": ("date", "date"), "datetime": ("datetime", "date"), "enum": ("enumeration", "select"),
    "boolean": ("bool", "booleancheckbox"),
}  # fmt: skip
BANDS = ("healthy", "at_risk", "critical", "churning")


def _labels(name: str) -> str:
    return "CSE " + name.removeprefix("cse_").replace("_", " ").capitalize()


def wanted_properties(push_mapping: Mapping) -> dict[str, list[PropertyCreate]]:
    """Object type → properties to create, derived from the push mapping (the admin's choice of names)."""
    company = []
    for spec in push_mapping.fields.values():
        kind, field_type = HUBSPOT_TYPES[spec.type]
        options = None
        values = list((spec.enum_out or {}).values()) or (list(BANDS) if spec.name == "band" else None)
        if values:
            kind, field_type = "enumeration", "select"
            options = [Option(label=v, value=v, display_order=i, hidden=False) for i, v in enumerate(values)]
        company.append(PropertyCreate(name=spec.to, label=_labels(spec.to), type=kind, field_type=field_type,
                                      group_name=GROUP, options=options))  # fmt: skip
    dedupe = PropertyCreate(name=TASK_DEDUPE_PROPERTY, label="CSE dedupe key", type="string", field_type="text",
                            group_name=GROUP, has_unique_value=True)  # fmt: skip
    return {push_mapping.object: company, "tasks": [dedupe]}


def install_fields(client: HubSpotClient, push_mapping: Mapping) -> list[str]:
    """Create what is missing; returns "object.property" for each property created."""
    core = client.api("crm.properties.core_api")
    groups = client.api("crm.properties.groups_api")
    created = []
    for object_type, properties in wanted_properties(push_mapping).items():
        existing_groups = {g.name for g in client.call(groups.get_all, object_type).results or []}
        if GROUP not in existing_groups:
            client.call(groups.create, object_type, PropertyGroupCreate(name=GROUP, label=GROUP_LABEL))
        existing = {p.name for p in client.call(core.get_all, object_type).results or []}
        for prop in properties:
            if prop.name not in existing:
                client.call(core.create, object_type, prop)
                created.append(f"{object_type}.{prop.name}")
    return created


def missing_fields(client: HubSpotClient, push_mapping: Mapping) -> dict[str, set[str]]:
    core = client.api("crm.properties.core_api")
    missing = {}
    for object_type, properties in wanted_properties(push_mapping).items():
        existing = {p.name for p in client.call(core.get_all, object_type).results or []}
        absent = {p.name for p in properties} - existing
        if absent:
            missing[object_type] = absent
    return missing
