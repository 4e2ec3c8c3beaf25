"""The vendor sources a sync reads: built from settings by each vendor's connector package.

Used by `cse sync`, the webhook processing job and the demo, so it lives in app/ rather than in the CLI. This
module names no SDK, and a missing connector is a clear error instead of an import crash.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

from sqlalchemy import Engine

from app.settings import Settings
from app.sync.versions import DEFAULT_MAPPINGS_DIR, active_mapping_dicts
from connectors.source import VendorSource
from engine.canonical import Vendor

VENDORS = tuple(v.value for v in Vendor)
CREDENTIALS = {
    "salesforce": ("SALESFORCE_USERNAME or SALESFORCE_SESSION_ID", ("salesforce_username", "salesforce_session_id")),
    "hubspot": ("HUBSPOT_ACCESS_TOKEN", ("hubspot_access_token",)),
    "intercom": ("INTERCOM_ACCESS_TOKEN", ("intercom_access_token",)),
}


def mappings_dir() -> Path:
    """Where default mappings live: mappings/ in the project, or CSE_MAPPINGS_DIR (a deployment's own set)."""
    return Path(os.environ.get("CSE_MAPPINGS_DIR") or DEFAULT_MAPPINGS_DIR)


class SourceUnavailable(RuntimeError):
    """A vendor cannot be synced: unknown, not configured, or its connector is not installed."""


def vendor_configured(settings: Settings, vendor: str) -> bool:
    return any(getattr(settings, attr, None) for attr in CREDENTIALS[vendor][1])


def _source_for(settings: Settings, vendor: str, engine: Engine | None) -> VendorSource:
    """Build a vendor's source from connectors/<vendor>/source.py.

    The module offers `from_settings(settings)`, or a `*Source` class with a `from_settings` classmethod. When that
    takes a `mappings` parameter it receives the active mappings (stored versions included) as YAML dicts, so a
    connector that fetches only the fields mappings read also fetches a field an admin just mapped.
    """
    module_name = f"connectors.{vendor}.source"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise SourceUnavailable(f"the {vendor} connector (connectors/{vendor}/source.py) is not present") from None
        raise
    factory = getattr(module, "from_settings", None)
    if factory is None:
        classes = [
            obj
            for name, obj in vars(module).items()
            if isinstance(obj, type) and name.endswith("Source") and hasattr(obj, "from_settings")
        ]
        if len(classes) != 1:
            raise SourceUnavailable(f"{module_name} offers no from_settings() nor one *Source class with it")
        factory = classes[0].from_settings
    if engine is not None and "mappings" in inspect.signature(factory).parameters:
        with engine.connect() as conn:
            return factory(settings, mappings=active_mapping_dicts(conn, vendor, mappings_dir()))
    return factory(settings)


def build_sources(settings: Settings, vendor: str | None = None, engine: Engine | None = None) -> list[VendorSource]:
    """The sources to sync: the named vendor, or every vendor whose credentials are set (the store, when given,
    supplies the active mappings to connectors that want them)."""
    if vendor is not None and vendor not in VENDORS:
        raise SourceUnavailable(f"unknown vendor {vendor!r} (one of {', '.join(VENDORS)})")
    vendors = [vendor] if vendor else [v for v in VENDORS if vendor_configured(settings, v)]
    if not vendors:
        names = "; ".join(f"{v}: {CREDENTIALS[v][0]}" for v in VENDORS)
        raise SourceUnavailable(f"no vendor is configured ({names})")
    for name in vendors:
        if not vendor_configured(settings, name):
            raise SourceUnavailable(f"{name} is not configured: set {CREDENTIALS[name][0]}")
    return [_source_for(settings, name, engine) for name in vendors]
