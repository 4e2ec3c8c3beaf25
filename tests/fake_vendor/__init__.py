"""Acme, a fake fourth vendor that lives outside connectors/: a folder with its own sandbox (sandbox.py), client,
source, pusher, fields module and default mappings, joined to the app with `connectors.registry.register()`.

tests/test_fake_vendor.py registers it and runs pull, scoring and write-back through the app without naming it
anywhere in app/ or engine/: the proof that a new vendor is one folder.
"""

from pathlib import Path

from connectors.registry import Connector

VENDOR = "acme"
MAPPINGS = Path(__file__).parent / "mappings"  # its default mappings: what <CSE_MAPPINGS_DIR>/acme/ holds

CONNECTOR = Connector(
    name=VENDOR,
    credentials=("acme_token",),  # read by Settings.value() from ACME_TOKEN: Settings has no field for it
    credentials_help="ACME_TOKEN",
    source="tests.fake_vendor.source:AcmeSource.from_settings",
    client="tests.fake_vendor.client:AcmeClient",
    pusher="tests.fake_vendor.push:AcmePusher",
    push_mapping="push_companies",
    company_object="companies",
    fields="tests.fake_vendor.fields",
    webhook_objects={"company": "companies"},
    tasks=True,
    rank=0,  # ahead of the shipped CRMs, so a task for an account it holds goes to Acme
    sandbox="tests.fake_vendor.sandbox:start_sandbox",
)
