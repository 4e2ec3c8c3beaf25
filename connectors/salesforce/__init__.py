"""Salesforce connector: a client from settings (simple-salesforce underneath) and the sync's SalesforceSource."""

from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.source import SalesforceSource, fields_from_mappings, load_mapping_files

__all__ = [
    "SalesforceClient",
    "SalesforceConfig",
    "SalesforceSource",
    "fields_from_mappings",
    "load_mapping_files",
]
