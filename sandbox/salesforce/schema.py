"""The sandbox org's data model: its sObjects and fields (FieldDef / ObjectDef, sobjects.py), the custom fields our
demo org has included.

Field definitions drive everything the org does: describe answers, SOQL type checks, create/update validation
(required, read-only, picklists, lengths, references) and calculated fields. Keeping them in one table means the
sandbox cannot accept a field its own describe does not list, which is exactly what the connector's mapping
validation relies on.
"""

from __future__ import annotations

from typing import Any

from sandbox.salesforce.sobjects import FieldDef, ObjectDef


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
    _num("CSE_Churn_Probability__c", precision=4, scale=3, label="CSE Churn Probability"),
    _num("CSE_Churn_Horizon_Days__c", precision=3, label="CSE Churn Horizon Days"),
    _pick("CSE_Risk_Source__c", ("model", "health"), label="CSE Risk Source"),
    _flag("CSE_Early_Warning__c", label="CSE Early Warning"),
    _num("CSE_Warning_Horizon_Days__c", precision=3, label="CSE Warning Horizon Days"),
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
