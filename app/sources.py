"""The vendor sources a sync reads, built from settings through the connector registry.

Used by `cse sync`, the webhook processing job and the demo, so it lives in app/ rather than in the CLI. This
module names no vendor and no SDK: a connector is found in connectors/registry.py, and a missing or unconfigured
one is a clear error instead of an import crash.
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.settings import Settings
from app.sync.versions import ActiveMappings, load_active_mappings
from connectors.registry import all_connectors, connector
from connectors.source import VendorSource


class SourceUnavailable(RuntimeError):
    """A vendor cannot be synced: unknown or not configured."""


def vendor_configured(settings: Settings, vendor: str) -> bool:
    return connector(vendor).configured(settings)


def build_sources(
    settings: Settings,
    vendor: str | None = None,
    engine: Engine | None = None,
    mappings: ActiveMappings | None = None,
) -> list[VendorSource]:
    """The sources to sync: the named vendor, or every vendor whose credentials are set.

    Each source receives the validated active pull mappings of its vendor (stored versions included when the store
    is given), so it selects exactly the fields they read, a field an admin just mapped included. Pass the
    `mappings` a run already loaded to hand the same objects to the sync; otherwise they are loaded here.
    """
    try:
        records = [connector(vendor)] if vendor else [c for c in all_connectors() if c.configured(settings)]
    except LookupError as error:
        raise SourceUnavailable(str(error)) from None
    if not records:
        names = "; ".join(f"{c.name}: {c.credentials_help}" for c in all_connectors())
        raise SourceUnavailable(f"no vendor is configured ({names})")
    for record in records:
        if not record.configured(settings):
            raise SourceUnavailable(f"{record.name} is not configured: set {record.credentials_help}")
    if mappings is None:
        mappings = load_active_mappings(settings, engine, [r.name for r in records])
    return [record.build_source(settings, mappings.of(record.name)) for record in records]
