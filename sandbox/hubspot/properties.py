"""Property and property-group administration in the sandbox portal (the /crm/v3/properties endpoints): what
HubSpot accepts as a new or changed property definition. Mixed into `HubSpotState`, whose lock, clock and
`properties` / `groups` it works on."""

from __future__ import annotations

from sandbox.hubspot.errors import InputError
from sandbox.hubspot.schema import PropertyDef
from sandbox.hubspot.values import iso_ms

_FIELD_TYPES: dict[str, set[str]] = {
    "string": {"text", "textarea", "file", "phonenumber", "html"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
}


def _valid_property_name(name: str) -> bool:
    return (
        bool(name)
        and name[0].isalpha()
        and name[0].islower()
        and all(c.islower() or c.isdigit() or c == "_" for c in name)
    )


def _options(raw: list[dict]) -> list[dict]:
    return [
        {
            "label": str(o.get("label", o.get("value", ""))),
            "value": str(o.get("value", "")),
            "displayOrder": int(o.get("displayOrder", i)),
            "hidden": bool(o.get("hidden", False)),
            **({"description": o["description"]} if o.get("description") else {}),
        }
        for i, o in enumerate(raw)
    ]


class PropertyAdmin:
    def create_property(self, object_type: str, body: dict) -> PropertyDef:
        """POST /crm/v3/properties/{type}."""
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise InputError(f"Missing required field(s): {', '.join(missing)}")
        name = str(body["name"])
        if not _valid_property_name(name):
            raise InputError(f"Property name {name!r} must start with a letter and use lower case letters, digits, _")
        kind, field_type = body["type"], body["fieldType"]
        if kind not in _FIELD_TYPES:
            raise InputError(f"{kind!r} is not a valid property type")
        if field_type not in _FIELD_TYPES[kind]:
            raise InputError(f"fieldType {field_type!r} is not valid for a property of type {kind!r}")
        with self.lock:
            existing = self.properties[object_type].get(name)
            if existing is not None and not existing.archived:
                raise InputError(
                    f"Property named '{name}' already exists.", category="OBJECT_ALREADY_EXISTS", status=409
                )
            group = self.groups[object_type].get(body["groupName"])
            if group is None or group["archived"]:
                raise InputError(f"Property group {body['groupName']!r} does not exist")
            stamp = iso_ms(self.now())
            definition = PropertyDef(
                name=name,
                label=str(body["label"]),
                type=kind,
                field_type=field_type,
                group=body["groupName"],
                options=_options(body.get("options") or []),
                hubspot_defined=False,
                unique=bool(body.get("hasUniqueValue", False)),
                description=str(body.get("description") or ""),
                display_order=int(body.get("displayOrder", -1)),
                created_at=stamp,
                updated_at=stamp,
            )
            self.properties[object_type][name] = definition
            return definition

    def update_property(self, object_type: str, name: str, body: dict) -> PropertyDef:
        with self.lock:
            definition = self.prop(object_type, name)
            if definition is None:
                raise InputError(f"Unable to find property {name}", category="OBJECT_NOT_FOUND", status=404)
            if definition.hubspot_defined and ("type" in body or "fieldType" in body):
                raise InputError(f"The type of HubSpot defined property {name} cannot be changed")
            if "groupName" in body and body["groupName"] not in self.groups[object_type]:
                raise InputError(f"Property group {body['groupName']!r} does not exist")
            kind = body.get("type", definition.type)
            field_type = body.get("fieldType", definition.field_type)
            if kind not in _FIELD_TYPES or field_type not in _FIELD_TYPES[kind]:
                raise InputError(f"fieldType {field_type!r} is not valid for a property of type {kind!r}")
            definition.type, definition.field_type = kind, field_type
            for key, attr in (("label", "label"), ("description", "description"), ("groupName", "group")):
                if key in body:
                    setattr(definition, attr, str(body[key]))
            if "displayOrder" in body:
                definition.display_order = int(body["displayOrder"])
            if "options" in body:
                definition.options = _options(body["options"] or [])
            definition.updated_at = iso_ms(self.now())
            return definition

    def archive_property(self, object_type: str, name: str) -> None:
        with self.lock:
            definition = self.prop(object_type, name)
            if definition is None:
                raise InputError(f"Unable to find property {name}", category="OBJECT_NOT_FOUND", status=404)
            if definition.hubspot_defined:
                raise InputError(f"HubSpot defined property {name} cannot be archived")
            definition.archived = True

    def create_group(self, object_type: str, body: dict) -> dict:
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise InputError("Property groups need a name and a label")
        if not _valid_property_name(str(name)):
            raise InputError(f"Group name {name!r} must start with a letter and use lower case letters, digits, _")
        with self.lock:
            existing = self.groups[object_type].get(name)
            if existing is not None and not existing["archived"]:
                raise InputError(
                    f"Property group named '{name}' already exists.", category="OBJECT_ALREADY_EXISTS", status=409
                )
            group = {
                "name": name,
                "label": str(label),
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self.groups[object_type][name] = group
            return group
