"""What an sObject and a field are in the sandbox org, and how describe (REST and SOAP types) reports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NUMERIC_TYPES = frozenset({"double", "currency", "percent", "int"})
STRING_TYPES = frozenset({"string", "textarea", "url", "email", "phone", "picklist", "multipicklist", "combobox"})
ID_TYPES = frozenset({"id", "reference"})

SOAP_TYPES: dict[str, str] = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def label_of(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return base.replace("_", " ")


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject, with the properties describe reports and validation needs."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    calculated: bool = False
    defaulted: bool = False
    default: Any = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    filterable: bool = True

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def required(self) -> bool:
        """What REQUIRED_FIELD_MISSING checks on create: not nillable, writable, and no default."""
        return not self.nillable and self.createable and not self.defaulted and not self.calculated

    def describe(self) -> dict[str, Any]:
        """The field as `GET /sobjects/<type>/describe` lists it (the subset of keys clients actually read)."""
        return {
            "aggregatable": self.type not in {"textarea"},
            "autoNumber": self.name == "CaseNumber",
            "byteLength": self.length * 3 if self.type in STRING_TYPES | ID_TYPES else 0,
            "calculated": self.calculated,
            "calculatedFormula": None,
            "caseSensitive": False,
            "createable": self.createable and not self.calculated,
            "custom": self.custom,
            "defaultValue": self.default if self.defaulted and not callable(self.default) else None,
            "defaultedOnCreate": self.defaulted,
            "digits": self.precision if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": self.filterable,
            "groupable": self.type not in NUMERIC_TYPES - {"int"} and self.type != "textarea",
            "idLookup": self.type == "id" or self.external_id,
            "label": self.label or label_of(self.name),
            "length": self.length if self.type in STRING_TYPES | ID_TYPES else 0,
            "name": self.name,
            "nameField": self.name == "Name",
            "nillable": self.nillable,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": self.defaulted and value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "precision": self.precision if self.type in NUMERIC_TYPES - {"int"} else 0,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable and not self.calculated,
        }


@dataclass
class ObjectDef:
    """An sObject type: its key prefix (first three characters of every record id) and its fields."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    custom: bool = False
    createable: bool = True

    def add(self, *defs: FieldDef) -> None:
        for f in defs:
            self.fields[f.name] = f

    def field(self, name: str) -> FieldDef | None:
        """Field names are case-insensitive in SOQL and in request bodies, as in a real org."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for f in self.fields.values() if f.name.lower() == lowered), None)

    def relationship(self, name: str) -> FieldDef | None:
        lowered = name.lower()
        return next(
            (f for f in self.fields.values() if f.relationship_name and f.relationship_name.lower() == lowered), None
        )

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def summary(self, version: str) -> dict[str, Any]:
        """The object as the global describe (`GET /sobjects`) lists it."""
        return {
            "activateable": False,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": False,
            "deletable": True,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": self.name in {"Account", "Contact"},
            "mruEnabled": True,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": True,
            "updateable": True,
            "urls": self.urls(version),
        }

    def describe(self, version: str) -> dict[str, Any]:
        return {
            **self.summary(version),
            "childRelationships": [],
            "fields": [f.describe() for f in self.fields.values()],
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                }
            ],
        }
