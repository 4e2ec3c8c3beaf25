"""Our Salesforce fields: the shipped metadata covers what the push mapping writes; describe verifies an org."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.settings import Settings
from app.writeback.outbox import _DECIMALS
from connectors.mapping import load_mapping
from connectors.mapping.schema import PUSH_SCHEMA
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.fields import METADATA_DIR, missing_fields, required_fields, shipped_fields
from engine.canonical import Band
from engine.expansion import EXPANSION_TYPES
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


# What a field's metadata <type> must be to hold a push mapping type (connectors/mapping/schema.py): a Percent
# field would show 0.42 as 0.42 %, so a probability goes into a Number.
COMPATIBLE = {
    "number": {"Number", "Currency"},
    "integer": {"Number"},
    "string": {"Text", "TextArea", "LongTextArea", "Picklist"},
    "enum": {"Picklist"},
    "boolean": {"Checkbox"},
    "date": {"Date"},
    "datetime": {"DateTime"},
}
NS = {"md": "http://soap.sforce.com/2006/04/metadata"}
# The values a score's text columns take (others: their PUSH_SCHEMA choices).
SCORE_VALUES = {"band": tuple(Band), "expansion_type": EXPANSION_TYPES}


def _metadata(name: str) -> ET.Element:
    path = METADATA_DIR / "objects" / PUSH.object / "fields" / f"{name}.field-meta.xml"
    assert path.is_file(), f"{name}: no field metadata in the package ({path})"
    return ET.parse(path).getroot()


def test_every_field_the_default_push_mapping_writes_has_metadata_of_a_compatible_type():
    packaged = {m.text for m in ET.parse(METADATA_DIR / "package.xml").getroot().iterfind(".//md:members", NS)}
    for name, spec in PUSH.fields.items():
        root = _metadata(spec.to)
        assert root.findtext("md:fullName", namespaces=NS) == spec.to
        kind = root.findtext("md:type", namespaces=NS)
        assert kind in COMPATIBLE[spec.type], f"{spec.to} is a {kind}: cannot hold {name} ({spec.type})"
        assert f"{PUSH.object}.{spec.to}" in packaged, f"{spec.to} is not listed in package.xml"
        if kind == "Number":
            scale = int(root.findtext("md:scale", namespaces=NS))
            assert spec.type != "integer" or scale == 0, f"{spec.to}: an integer field has no decimals"
            assert scale >= _DECIMALS.get(name, 0), f"{spec.to} keeps {scale} decimals of {name}"
        if kind == "Picklist":  # every value write-back can send is one the restricted picklist accepts
            listed = {v.text for v in root.iterfind(".//md:value/md:fullName", NS)}
            values = SCORE_VALUES.get(name) or PUSH_SCHEMA[name].choices or ()
            assert values, f"{spec.to}: a picklist cannot hold {name}'s free text"
            sent = {(spec.enum_out or {}).get(v, v) for v in values}
            assert sent <= listed, f"{spec.to} lacks {sorted(sent - listed)}"
    for name in ("churn_probability", "churn_horizon_days", "risk_source", "early_warning"):
        assert name in PUSH.fields, f"the default mapping writes {name}: the CRM says what produced the risk"
