"""What a fresh HubSpot portal knows before anyone writes to it: object types, built-in properties, association types.

Kept apart from the request handling so the facts we copied from HubSpot's documentation live in one place and can
be checked against it: object type ids and names, the properties each object returns by default, the
HubSpot-defined association type ids (developers.hubspot.com, "Associations v4", association type id values), the
documented limits of list, search and batch endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Documented limits.
LIST_MAX_LIMIT = 100  # GET /crm/v3/objects/{type}: at most 100 per page
SEARCH_MAX_LIMIT = 200  # "The maximum number of supported objects per page is 200."
SEARCH_TOTAL_CAP = 10_000  # "Attempting to page beyond 10,000 will result in a 400 error."
SEARCH_MAX_FILTER_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
SEARCH_QUERY_MAX_CHARS = 3000
BATCH_MAX_INPUTS = 100  # batch read/create/update/upsert/archive of CRM objects
ASSOCIATION_BATCH_MAX_INPUTS = 1000  # v4 association batch endpoints
ASSOCIATION_PAGE_MAX = 500
OWNERS_MAX_LIMIT = 500
RATE_LIMIT_MAX = 190  # private app, Professional/Enterprise: 190 requests per rolling 10 seconds
RATE_LIMIT_INTERVAL_MS = 10_000
DAILY_LIMIT = 1_000_000
SEARCH_REQUESTS_PER_SECOND = 5


@dataclass(frozen=True)
class ObjectType:
    name: str  # plural API name: companies
    type_id: str  # 0-2
    singular: str  # company
    created_property: str  # createdate, or hs_createdate for engagements
    modified_properties: tuple[str, ...]  # maintained on every write; the first is the one search filters on
    default_properties: tuple[str, ...]  # returned when a read names no properties
    searchable: tuple[str, ...]  # properties the search `query` string matches
    id_base: int  # first record id; distinct per type so a mixed-up id fails loudly
    required_on_create: tuple[str, ...] = ()


OBJECT_TYPES: dict[str, ObjectType] = {
    o.name: o
    for o in (
        ObjectType(
            "contacts", "0-1", "contact", "createdate", ("lastmodifieddate", "hs_lastmodifieddate"),
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            ("firstname", "lastname", "email", "phone", "company"), 10_000_000_001,
        ),
        ObjectType(
            "companies", "0-2", "company", "createdate", ("hs_lastmodifieddate",),
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
            ("name", "domain", "website", "phone"), 20_000_000_001,
        ),
        ObjectType(
            "deals", "0-3", "deal", "createdate", ("hs_lastmodifieddate",),
            ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
             "pipeline"),
            ("dealname", "pipeline", "dealstage"), 30_000_000_001,
        ),
        ObjectType(
            "tickets", "0-5", "ticket", "createdate", ("hs_lastmodifieddate",),
            ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
             "hs_ticket_category", "hs_ticket_priority", "subject"),
            ("subject", "content"), 40_000_000_001,
        ),
        ObjectType(
            "tasks", "0-27", "task", "hs_createdate", ("hs_lastmodifieddate",),
            ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            ("hs_task_subject", "hs_task_body"), 50_000_000_001, required_on_create=("hs_timestamp",),
        ),
    )
}  # fmt: skip

_ALIASES: dict[str, str] = {}
for _o in OBJECT_TYPES.values():
    for _alias in (_o.name, _o.type_id, _o.singular):
        _ALIASES[_alias] = _o.name


def resolve_type(name: str) -> str | None:
    """Paths accept the plural name, the singular (v4 associations) or the type id (0-2); None if unknown."""
    return _ALIASES.get(name.lower())


# HubSpot-defined association type ids: (from, to) -> (unlabeled type id, primary type id or None).
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("tickets", "companies"): (339, 26),
    ("companies", "tickets"): (340, 25),
    ("tasks", "companies"): (192, None),
    ("companies", "tasks"): (191, None),
    ("contacts", "deals"): (4, None),
    ("deals", "contacts"): (3, None),
    ("contacts", "tickets"): (15, None),
    ("tickets", "contacts"): (16, None),
    ("contacts", "tasks"): (203, None),
    ("tasks", "contacts"): (204, None),
    ("deals", "tickets"): (27, None),
    ("tickets", "deals"): (28, None),
    ("deals", "tasks"): (215, None),
    ("tasks", "deals"): (216, None),
    ("tickets", "tasks"): (229, None),
    ("tasks", "tickets"): (230, None),
}


def inverse_type_id(from_type: str, to_type: str, type_id: int) -> int | None:
    """The type id of the same association seen from the other side (primary maps to primary)."""
    unlabeled, primary = ASSOCIATION_TYPES[(from_type, to_type)]
    back_unlabeled, back_primary = ASSOCIATION_TYPES[(to_type, from_type)]
    if type_id == unlabeled:
        return back_unlabeled
    if primary is not None and type_id == primary:
        return back_primary
    return None


def association_type_name(from_type: str, to_type: str, type_id: int) -> str:
    """v3 names: the primary association is `ticket_to_company`, the unlabeled one `ticket_to_company_unlabeled`."""
    base = f"{OBJECT_TYPES[from_type].singular}_to_{OBJECT_TYPES[to_type].singular}"
    unlabeled, primary = ASSOCIATION_TYPES[(from_type, to_type)]
    if primary is None:
        return base
    return base if type_id == primary else f"{base}_unlabeled"


@dataclass
class PropertyDef:
    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool
    field_type: str
    group: str
    options: list[dict] = field(default_factory=list)
    read_only: bool = False
    hubspot_defined: bool = True
    unique: bool = False
    description: str = ""
    display_order: int = -1
    external_options: bool = False
    archived: bool = False
    created_at: str | None = None
    updated_at: str | None = None

    def to_api(self) -> dict:
        body = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "archived": self.archived,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if self.created_at:
            body["createdAt"] = self.created_at
        if self.updated_at:
            body["updatedAt"] = self.updated_at
        return body


def options(*pairs: tuple[str, str]) -> list[dict]:
    """Enumeration options as HubSpot returns them: label, value, displayOrder, hidden."""
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False} for i, (value, label) in enumerate(pairs)
    ]


def _p(name: str, label: str, type_: str, field_type: str, group: str, **kw) -> PropertyDef:
    return PropertyDef(name, label, type_, field_type, group, **kw)


LIFECYCLE = options(
    ("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"), ("customer", "Customer"),
    ("evangelist", "Evangelist"), ("other", "Other"),
)  # fmt: skip


def _common(group: str, created: str = "createdate") -> list[PropertyDef]:
    return [
        _p("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        _p(created, "Create Date", "datetime", "date", group),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True),
        _p("hubspot_owner_id", "Owner", "enumeration", "select", group, external_options=True),
    ]


BUILTIN_GROUPS: dict[str, list[tuple[str, str]]] = {
    "companies": [("companyinformation", "Company information")],
    "contacts": [("contactinformation", "Contact information")],
    "deals": [("dealinformation", "Deal information")],
    "tickets": [("ticketinformation", "Ticket information")],
    "tasks": [("task", "Task information")],
}

BUILTIN_PROPERTIES: dict[str, list[PropertyDef]] = {
    "companies": [
        *_common("companyinformation"),
        _p("name", "Company name", "string", "text", "companyinformation"),
        _p("domain", "Company domain name", "string", "text", "companyinformation"),
        _p("website", "Website URL", "string", "text", "companyinformation"),
        _p("phone", "Phone Number", "string", "text", "companyinformation"),
        _p("description", "Description", "string", "textarea", "companyinformation"),
        _p("industry", "Industry", "string", "text", "companyinformation"),
        _p("annualrevenue", "Annual Revenue", "number", "number", "companyinformation"),
        _p("numberofemployees", "Number of Employees", "number", "number", "companyinformation"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "companyinformation", options=LIFECYCLE),
    ],
    "contacts": [
        *_common("contactinformation"),
        _p("lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation", read_only=True),
        _p("email", "Email", "string", "text", "contactinformation", unique=True),
        _p("firstname", "First Name", "string", "text", "contactinformation"),
        _p("lastname", "Last Name", "string", "text", "contactinformation"),
        _p("hs_full_name_or_email", "Full name or email", "string", "text", "contactinformation", read_only=True),
        _p("jobtitle", "Job Title", "string", "text", "contactinformation"),
        _p("phone", "Phone Number", "string", "text", "contactinformation"),
        _p("company", "Company Name", "string", "text", "contactinformation"),
        _p("associatedcompanyid", "Primary Associated Company ID", "number", "number", "contactinformation"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation", options=LIFECYCLE),
    ],
    "deals": [
        *_common("dealinformation"),
        _p("dealname", "Deal Name", "string", "text", "dealinformation"),
        _p("amount", "Amount", "number", "number", "dealinformation"),
        _p("closedate", "Close Date", "datetime", "date", "dealinformation"),
        _p("description", "Deal Description", "string", "textarea", "dealinformation"),
        _p("pipeline", "Pipeline", "enumeration", "select", "dealinformation",
           options=options(("default", "Sales Pipeline"))),
        _p(
            "dealstage", "Deal Stage", "enumeration", "radio", "dealinformation",
            options=options(
                ("appointmentscheduled", "Appointment Scheduled"), ("qualifiedtobuy", "Qualified To Buy"),
                ("presentationscheduled", "Presentation Scheduled"),
                ("decisionmakerboughtin", "Decision Maker Bought-In"),
                ("contractsent", "Contract Sent"), ("closedwon", "Closed Won"), ("closedlost", "Closed Lost"),
            ),
        ),
        _p(
            "dealtype", "Deal Type", "enumeration", "radio", "dealinformation",
            options=options(("newbusiness", "New Business"), ("existingbusiness", "Existing Business")),
        ),
    ],
    "tickets": [
        *_common("ticketinformation"),
        _p("subject", "Ticket name", "string", "text", "ticketinformation"),
        _p("content", "Ticket description", "string", "textarea", "ticketinformation"),
        _p("hs_pipeline", "Pipeline", "enumeration", "select", "ticketinformation",
           options=options(("0", "Support Pipeline"))),
        _p(
            "hs_pipeline_stage", "Ticket status", "enumeration", "radio", "ticketinformation",
            options=options(("1", "New"), ("2", "Waiting on contact"), ("3", "Waiting on us"), ("4", "Closed")),
        ),
        _p(
            "hs_ticket_priority", "Priority", "enumeration", "select", "ticketinformation",
            options=options(("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"), ("URGENT", "Urgent")),
        ),
        _p(
            "hs_ticket_category", "Category", "enumeration", "checkbox", "ticketinformation",
            options=options(
                ("PRODUCT_ISSUE", "Product issue"), ("BILLING_ISSUE", "Billing issue"),
                ("FEATURE_REQUEST", "Feature request"), ("GENERAL_INQUIRY", "General inquiry"),
            ),
        ),
        _p("closed_date", "Close date", "datetime", "date", "ticketinformation"),
        _p("time_to_close", "Time to close", "number", "number", "ticketinformation", read_only=True),
        _p("source_type", "Source", "enumeration", "select", "ticketinformation",
           options=options(("EMAIL", "Email"), ("CHAT", "Chat"), ("PHONE", "Phone"), ("FORM", "Form"))),
    ],
    "tasks": [
        *_common("task", created="hs_createdate"),
        _p("hs_timestamp", "Due date", "datetime", "date", "task"),
        _p("hs_task_subject", "Task Title", "string", "text", "task"),
        _p("hs_task_body", "Task notes", "string", "textarea", "task"),
        _p(
            "hs_task_status", "Task Status", "enumeration", "select", "task",
            options=options(
                ("NOT_STARTED", "Not started"), ("IN_PROGRESS", "In progress"), ("WAITING", "Waiting"),
                ("COMPLETED", "Completed"), ("DEFERRED", "Deferred"),
            ),
        ),
        _p(
            "hs_task_priority", "Priority", "enumeration", "select", "task",
            options=options(("NONE", "None"), ("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High")),
        ),
        _p(
            "hs_task_type", "Task Type", "enumeration", "select", "task",
            options=options(("TODO", "To-do"), ("CALL", "Call"), ("EMAIL", "Email")),
        ),
    ],
}  # fmt: skip
