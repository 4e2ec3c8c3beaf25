"""HubSpot connector: a client built from settings (private-app token) and a VendorSource over the CRM v3 API."""

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.source import HubSpotSource, ObjectNeeds, needs_from_mappings
from connectors.registry import Connector

__all__ = [
    "CONNECTOR",
    "HubSpotClient",
    "HubSpotSource",
    "ObjectNeeds",
    "needs_from_mappings",
]

CONNECTOR = Connector(
    name="hubspot",
    credentials=("hubspot_access_token",),
    credentials_help="HUBSPOT_ACCESS_TOKEN",
    source="connectors.hubspot.source:HubSpotSource.from_settings",
    client="connectors.hubspot.client:HubSpotClient",
    pusher="connectors.hubspot.push:HubSpotPusher",
    push_mapping="push_companies",
    company_object="companies",
    fields="connectors.hubspot.fields",
    webhook_objects={"company": "companies", "contact": "contacts", "deal": "deals", "ticket": "tickets"},
    tasks=True,
    rank=1,
    sandbox="sandbox.hubspot:start_sandbox",
)
