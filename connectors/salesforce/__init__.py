"""Salesforce connector: a client from settings (simple-salesforce underneath) and the sync's SalesforceSource."""

from connectors.registry import Connector
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.source import SalesforceSource, fields_from_mappings, load_mapping_files

__all__ = [
    "CONNECTOR",
    "SalesforceClient",
    "SalesforceConfig",
    "SalesforceSource",
    "fields_from_mappings",
    "load_mapping_files",
]

CONNECTOR = Connector(
    name="salesforce",
    credentials=("salesforce_username", "salesforce_session_id"),
    credentials_help="SALESFORCE_USERNAME or SALESFORCE_SESSION_ID",
    source="connectors.salesforce.source:SalesforceSource.from_settings",
    client="connectors.salesforce.client:SalesforceClient",
    pusher="connectors.salesforce.push:SalesforcePusher",
    push_mapping="push_account",
    company_object="Account",
    fields="connectors.salesforce.fields",
    references={"AccountId": "Account", "WhatId": "Account"},
    writeback_concurrency=2,
    tasks=True,
    rank=0,
    sandbox="sandbox.salesforce:start_sandbox",
)
