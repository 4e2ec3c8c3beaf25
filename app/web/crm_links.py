"""Links from an account page to the account's record in each CRM, built from the deployment's settings (the
Salesforce instance, the HubSpot portal id, the Intercom app id). A vendor whose setting is missing gets no link:
the page shows the record's id and which setting would make it one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from app.settings import Settings


def _salesforce(settings: Settings, obj: str, record_id: str) -> str | None:
    host = urlsplit(settings.salesforce_instance_url or "").netloc
    return f"https://{host}/lightning/r/{quote(obj, safe='')}/{quote(record_id, safe='')}/view" if host else None


def _hubspot(settings: Settings, obj: str, record_id: str) -> str | None:
    portal = settings.hubspot_portal_id
    return (
        f"https://app.hubspot.com/contacts/{quote(portal, safe='')}/company/{quote(record_id, safe='')}"
        if portal
        else None
    )


def _intercom(settings: Settings, obj: str, record_id: str) -> str | None:
    app_id = settings.intercom_app_id
    return (
        f"https://app.intercom.com/a/apps/{quote(app_id, safe='')}/companies/{quote(record_id, safe='')}"
        if app_id
        else None
    )


@dataclass(frozen=True)
class CrmLink:
    label: str  # how the CRM writes its own name
    setting: str  # the setting its links are built from
    build: Callable[[Settings, str, str], str | None]


CRMS = {
    "salesforce": CrmLink("Salesforce", "SALESFORCE_INSTANCE_URL", _salesforce),
    "hubspot": CrmLink("HubSpot", "HUBSPOT_PORTAL_ID", _hubspot),
    "intercom": CrmLink("Intercom", "INTERCOM_APP_ID", _intercom),
}


def record_url(settings: Settings, vendor: str, obj: str, record_id: str) -> str | None:
    """The web address of one company record in its CRM, or None when the vendor's setting is not set."""
    crm = CRMS.get(vendor)
    return crm.build(settings, obj, record_id) if crm else None


def missing_setting(vendor: str) -> str | None:
    """The setting that would turn a vendor's record ids into links."""
    crm = CRMS.get(vendor)
    return crm.setting if crm else None


def crm_label(vendor: str) -> str:
    crm = CRMS.get(vendor)
    return crm.label if crm else vendor
