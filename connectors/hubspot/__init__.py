"""HubSpot connector: a client built from settings (private-app token) and a VendorSource over the CRM v3 API."""

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.source import HubSpotSource, ObjectNeeds, needs_from_mappings

__all__ = [
    "HubSpotClient",
    "HubSpotSource",
    "ObjectNeeds",
    "needs_from_mappings",
]
