"""The sandbox org's data model: sObjects and fields as describe reports them, with the custom fields our demo org has.

Field definitions drive everything the org does: describe answers, SOQL type checks, create/update validation
(required, read-only, picklists, lengths, references) and calculated fields. Keeping them in one table means the
sandbox cannot accept a field its own describe does not list, which is exactly what the connector's mapping
validation relies on.
"""

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
            "label": self.label or _label(self.name),
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


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return base.replace("_", " ")


def _system_fields(owner: bool = True) -> list[FieldDef]:
    """Fields every sObject has: read-only to the API, maintained by the org on every write."""
    audit = {"nillable": False, "createable": False, "updateable": False, "defaulted": True}
    fields = [
        FieldDef(
            "Id", "id", "Record ID", length=18, nillable=False, createable=False, updateable=False, defaulted=True
        ),
        FieldDef(
            "IsDeleted",
            "boolean",
            "Deleted",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
            default=False,
        ),
        FieldDef("CreatedDate", "datetime", "Created Date", **audit),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            length=18,
            reference_to=("User",),
            relationship_name="CreatedBy",
            **audit,
        ),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **audit),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            length=18,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            **audit,
        ),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **audit),
    ]
    if owner:
        fields.append(
            FieldDef(
                "OwnerId",
                "reference",
                "Owner ID",
                length=18,
                nillable=False,
                defaulted=True,
                reference_to=("User",),
                relationship_name="Owner",
            )
        )
    return fields


def _text(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", length=length, **kw)


def _pick(name: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", length=255, picklist=values, **kw)


def _num(name: str, precision: int = 18, scale: int = 0, type_: str = "double", **kw: Any) -> FieldDef:
    return FieldDef(name, type_, precision=precision, scale=scale, **kw)


def _ref(name: str, targets: tuple[str, ...], relationship: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", length=18, reference_to=targets, relationship_name=relationship, **kw)


def _flag(name: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "boolean", nillable=False, defaulted=True, default=False, **kw)


# Picklist values of our demo org (standard values plus what its admin added), shared with the seeder.
PLAN_VALUES = ("Starter", "Team", "Business", "Enterprise")
SEGMENT_VALUES = ("SMB", "Mid-Market", "Enterprise")
LIFECYCLE_VALUES = ("Onboarding", "Adopted", "At Risk", "Churned")
ROLE_VALUES = ("Admin", "Manager", "Member", "Executive")
CASE_STATUS_VALUES = ("New", "Working", "Escalated", "Closed")
CLOSED_CASE_STATUSES = frozenset({"Closed"})
OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
OPPORTUNITY_TYPES = (
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
)
TASK_STATUS_VALUES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUSES = frozenset({"Completed"})
TASK_TYPE_VALUES = ("Call", "Email", "Meeting", "Other", "Email Reply", "Cancellation Inquiry", "Competitor Mention")

# Custom fields our write-back fills on Account (issue: scores in the CRM). Shipped as metadata for a Salesforce
# admin to deploy; a sandbox can start without them to exercise the "verify through describe" path.
CSE_ACCOUNT_FIELDS: tuple[FieldDef, ...] = (
    _num("CSE_Health_Score__c", precision=3, label="CSE Health Score"),
    _pick("CSE_Health_Band__c", ("healthy", "at_risk", "critical", "churning"), label="CSE Health Band"),
    _num("CSE_Health_Trend__c", precision=5, scale=1, label="CSE Health Trend"),
    _num("CSE_Churn_Probability__c", precision=5, scale=2, type_="percent", label="CSE Churn Probability"),
    FieldDef("CSE_Risk_Drivers__c", "textarea", "CSE Top Risk Drivers", length=32768, filterable=False),
    _num("CSE_Expansion_Score__c", precision=3, label="CSE Expansion Score"),
    _pick("CSE_Expansion_Type__c", ("seats", "plan", "add_on", "none"), label="CSE Expansion Type"),
    FieldDef("CSE_Last_Scored__c", "datetime", "CSE Last Scored"),
)


def build_schema(cse_fields: bool = True) -> dict[str, ObjectDef]:
    """The demo org's objects. `cse_fields=False` leaves out the CSE_* custom fields (not yet deployed)."""
    user = ObjectDef("User", "005", "User", "Users", createable=False)
    user.add(
        *_system_fields(owner=False),
        _text("Username", 80, nillable=False, unique=True),
        _text("FirstName", 40),
        _text("LastName", 80, nillable=False),
        FieldDef("Name", "string", "Full Name", length=121, calculated=True, createable=False, updateable=False),
        FieldDef("Email", "email", length=128, nillable=False),
        _flag("IsActive", label="Active"),
    )

    account = ObjectDef("Account", "001", "Account", "Accounts")
    account.add(
        *_system_fields(),
        _text("Name", nillable=False, label="Account Name"),
        _pick(
            "Type",
            (
                "Prospect",
                "Customer - Direct",
                "Customer - Channel",
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
                "Other",
            ),
            label="Account Type",
        ),
        _pick(
            "Industry",
            (
                "Agriculture",
                "Banking",
                "Consulting",
                "Education",
                "Finance",
                "Healthcare",
                "Manufacturing",
                "Media",
                "Retail",
                "Technology",
                "Other",
            ),
        ),
        FieldDef("Website", "url", length=255),
        FieldDef("Phone", "phone", length=40),
        _num("AnnualRevenue", type_="currency", label="Annual Revenue"),
        FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
        FieldDef("Description", "textarea", length=32000, filterable=False),
        _pick("Plan__c", PLAN_VALUES, restricted=True, label="Plan"),
        _num("Seats_Purchased__c", label="Seats Purchased"),
        FieldDef("Customer_Since__c", "date", "Customer Since"),
        FieldDef("Renewal_Date__c", "date", "Renewal Date"),
        _pick("Segment__c", SEGMENT_VALUES, restricted=True, label="Segment"),
        _pick("Lifecycle_Stage__c", LIFECYCLE_VALUES, restricted=True, label="Lifecycle Stage"),
        _pick("Customer_Status__c", ("Active", "Churned"), restricted=True, label="Customer Status"),
        FieldDef("Churn_Date__c", "date", "Churn Date"),
    )
    if cse_fields:
        account.add(*CSE_ACCOUNT_FIELDS)

    contact = ObjectDef("Contact", "003", "Contact", "Contacts")
    contact.add(
        *_system_fields(),
        _ref("AccountId", ("Account",), "Account", label="Account ID"),
        _text("FirstName", 40),
        _text("LastName", 80, nillable=False),
        FieldDef("Name", "string", "Full Name", length=121, calculated=True, createable=False, updateable=False),
        FieldDef("Email", "email", length=80),
        _text("Title", 128),
        FieldDef("Phone", "phone", length=40),
        _pick("Role__c", ROLE_VALUES, label="Role"),
        _flag("Champion__c", label="Champion"),
        _flag("Executive_Sponsor__c", label="Executive Sponsor"),
    )

    opportunity = ObjectDef("Opportunity", "006", "Opportunity", "Opportunities")
    opportunity.add(
        *_system_fields(),
        _ref("AccountId", ("Account",), "Account", label="Account ID"),
        _text("Name", 120, nillable=False),
        _pick("StageName", OPPORTUNITY_STAGES, nillable=False, label="Stage"),
        FieldDef("CloseDate", "date", "Close Date", nillable=False),
        _num("Amount", type_="currency"),
        _num("Probability", precision=3, type_="percent"),
        _pick("Type", OPPORTUNITY_TYPES, label="Opportunity Type"),
        FieldDef("IsClosed", "boolean", "Closed", nillable=False, calculated=True, defaulted=True, default=False),
        FieldDef("IsWon", "boolean", "Won", nillable=False, calculated=True, defaulted=True, default=False),
        FieldDef("Description", "textarea", length=32000, filterable=False),
        _num("Seat_Change__c", label="Seat Change"),
        _num("Plan_Change__c", precision=2, label="Plan Change"),
        _pick("New_Plan__c", PLAN_VALUES, restricted=True, label="New Plan"),
    )

    case = ObjectDef("Case", "500", "Case", "Cases")
    case.add(
        *_system_fields(),
        FieldDef(
            "CaseNumber",
            "string",
            "Case Number",
            length=30,
            nillable=False,
            calculated=True,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        _ref("AccountId", ("Account",), "Account", label="Account ID"),
        _ref("ContactId", ("Contact",), "Contact", label="Contact ID"),
        _text("Subject"),
        FieldDef("Description", "textarea", length=32000, filterable=False),
        _pick("Status", CASE_STATUS_VALUES, nillable=False, defaulted=True, default="New"),
        _pick("Priority", ("High", "Medium", "Low"), defaulted=True, default="Medium"),
        _pick("Origin", ("Phone", "Email", "Web", "Chat"), label="Case Origin"),
        _pick("Type", ("Question", "Problem", "Feature Request")),
        _pick("Reason", ("Installation", "Performance", "Breakdown", "Complex functionality", "Other")),
        FieldDef("IsClosed", "boolean", "Closed", nillable=False, calculated=True, defaulted=True, default=False),
        FieldDef("ClosedDate", "datetime", "Closed Date", createable=False, updateable=False, calculated=True),
        _flag("IsEscalated", label="Escalated"),
        FieldDef("Escalated_At__c", "datetime", "Escalated At"),
        _num(
            "Resolution_Hours__c",
            precision=10,
            scale=1,
            label="Resolution Hours",
            calculated=True,
            createable=False,
            updateable=False,
        ),
    )

    task = ObjectDef("Task", "00T", "Task", "Tasks")
    task.add(
        *_system_fields(),
        _ref("WhatId", ("Account", "Opportunity", "Case"), "What", label="Related To ID"),
        _ref("WhoId", ("Contact",), "Who", label="Name ID"),
        _text("Subject"),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        _pick("Status", TASK_STATUS_VALUES, nillable=False, defaulted=True, default="Not Started"),
        _pick("Priority", ("High", "Normal", "Low"), nillable=False, defaulted=True, default="Normal"),
        _pick("Type", TASK_TYPE_VALUES),
        _pick("TaskSubtype", ("Task", "Email", "Call"), defaulted=True, default="Task"),
        FieldDef("Description", "textarea", "Comments", length=32000, filterable=False),
        FieldDef("IsClosed", "boolean", "Closed", nillable=False, calculated=True, defaulted=True, default=False),
        FieldDef(
            "CompletedDateTime", "datetime", "Completed Date/Time", createable=False, updateable=False, calculated=True
        ),
        _text("CSE_Dedupe_Key__c", 80, external_id=True, unique=True, label="CSE Dedupe Key"),
    )

    return {o.name: o for o in (user, account, contact, opportunity, case, task)}
