"""One mappings directory: CSE_MAPPINGS_DIR (Settings.mappings_dir) is what sync, webhook processing and write-back
delivery all read. Before, only the CLI read it, so a deployment that set it ran two mapping sets.

The vendor here is registered for the test (connectors/registry.py), with a source and a pusher that record what
they are given, so the only mappings that exist for it are the ones in the test's folder: reading the packaged
folder instead fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest

from app.jobs import process_webhooks
from app.settings import Settings
from app.sources import build_sources
from app.webhook_events.store import record_events
from app.writeback.jobs import deliver_job
from connectors.registry import Connector, register, unregister
from connectors.source import PullStats
from connectors.webhook_common import VendorEvent

VENDOR = "mapdirtest"
COMPANIES = f"""
vendor: {VENDOR}
object: companies
direction: pull
entity: account
id: id
updated: updated_at
fields:
  name: {{from: legal_name, type: string, required: true}}
"""
PUSH = f"""
vendor: {VENDOR}
object: companies
direction: push
fields:
  health: {{to: score, type: number}}
"""
SEEN: list[list] = []  # the mappings each source was built with


@dataclass
class RecordingSource:
    mappings: list
    vendor: str = VENDOR
    stats: PullStats = field(default_factory=PullStats)

    @classmethod
    def from_settings(cls, settings, mappings):
        SEEN.append(list(mappings))
        return cls(list(mappings))

    def objects(self):
        return ("companies",)

    def pull(self, obj: str, since: datetime | None):
        return iter(())

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict]:
        return []


class NoClient:
    @classmethod
    def from_settings(cls, settings):
        return cls()


class NoPusher:
    batch_limits = {"update_fields": 10}
    idempotent = {"update_fields"}

    def __init__(self, client) -> None:
        self.client = client


@pytest.fixture
def vendor(tmp_path, monkeypatch, store):
    folder = tmp_path / "mappings" / VENDOR
    folder.mkdir(parents=True)
    (folder / "companies.yaml").write_text(COMPANIES)
    (folder / "push_companies.yaml").write_text(PUSH)
    here = __name__
    register(Connector(
        name=VENDOR, credentials=("mapdirtest_token",), credentials_help="MAPDIRTEST_TOKEN",
        source=f"{here}:RecordingSource.from_settings", client=f"{here}:NoClient", pusher=f"{here}:NoPusher",
        push_mapping="push_companies", company_object="companies", fields=here,
    ))  # fmt: skip
    env = {"CSE_MAPPINGS_DIR": str(tmp_path / "mappings"), "MAPDIRTEST_TOKEN": "t", "DATABASE_URL": str(store.url),
           "CSE_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    SEEN.clear()
    yield Settings.from_env()
    unregister(VENDOR)


def test_sync_sources_read_the_settings_mappings_dir(vendor, store):
    [source] = build_sources(vendor, VENDOR, store)
    assert [m.fields["name"].source for m in source.mappings] == ["legal_name"]


def test_webhook_processing_reads_the_settings_mappings_dir(vendor, store):
    event = VendorEvent("e1", "tenant", "companies", "42", "updated", payload="{}")
    record_events(store, VENDOR, [event])
    result = process_webhooks(vendor, store)
    assert result["events"] == 1
    assert [[m.name for m in mappings] for mappings in SEEN] == [["companies"]]


def test_writeback_delivery_reads_the_settings_mappings_dir(vendor, store):
    # The packaged folder has no mapping for this vendor: delivering through it would raise KeyError.
    assert deliver_job(VENDOR, []) == {"delivered": 0, "retried": 0, "parked": 0, "skipped": 0, "errors": []}
