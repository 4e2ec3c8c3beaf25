"""Our Salesforce fields: the shipped metadata covers what the push mapping writes; describe verifies an org."""

from __future__ import annotations

from app.settings import Settings
from connectors.mapping import load_mapping
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.fields import missing_fields, required_fields, shipped_fields
from sandbox.salesforce import start_sandbox

PUSH = load_mapping("mappings/salesforce/push_account.yaml")


def test_shipped_metadata_defines_every_field_write_back_needs():
    shipped = shipped_fields()
    for obj, names in required_fields(PUSH).items():
        assert names <= shipped.get(obj, set()), f"{obj}: {sorted(names - shipped.get(obj, set()))} not shipped"


def test_describe_finds_the_fields_once_deployed_and_names_the_missing_ones():
    with start_sandbox(cse_fields=True) as deployed:
        client = SalesforceClient.from_settings(Settings.from_env(deployed.settings_env()))
        assert missing_fields(client, PUSH) == {}
    with start_sandbox(cse_fields=False) as bare:
        client = SalesforceClient.from_settings(Settings.from_env(bare.settings_env()))
        missing = missing_fields(client, PUSH)
    assert missing["Account"] == {spec.to for spec in PUSH.fields.values()}
