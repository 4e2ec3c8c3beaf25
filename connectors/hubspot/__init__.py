"""HubSpot connector: a client built from settings (private-app token) and a VendorSource over the CRM v3 API."""

from connectors.hubspot.client import HubSpotClient, HubSpotConfigError, HubSpotError, RetryPolicy
from connectors.hubspot.source import HubSpotSource, ObjectNeeds, needs_from_mappings

__all__ = [
    "HubSpotClient",
    "HubSpotConfigError",
    "HubSpotError",
    "HubSpotSource",
    "ObjectNeeds",
    "RetryPolicy",
    "needs_from_mappings",
]
