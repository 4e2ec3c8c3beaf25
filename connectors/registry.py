"""The connector registry: one `Connector` record per vendor, declared by `connectors/<vendor>/__init__.py` as
`CONNECTOR`, collected here.

Everything outside connectors/ that needs to know about vendors (sources, write-back pushers and queues, webhook
object names, the outbox's company objects, the demo's sandboxes) loops over `connectors()` or looks one up with
`connector(name)`, so a new vendor is one new package under connectors/ and no edit anywhere else. A vendor that
lives outside this package (a plugin, a test's fake) joins with `register()`.

Records name their code as "module:attribute" references, imported on first use: collecting the registry loads
no SDK it does not already need, and connectors never import sandbox/ (the sandbox factory is only a reference).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType
from typing import Any

import connectors


def resolve(reference: str) -> Any:
    """The object a "package.module:attribute.path" reference names, imported now."""
    module_name, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        target = getattr(target, part)
    return target


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Connector:
    """What the app needs to know about one vendor."""

    name: str
    # Settings attributes that hold its credentials: the vendor is configured when any one is set.
    credentials: tuple[str, ...]
    # What to tell an admin who has set none of them (the environment variables).
    credentials_help: str
    # (settings, validated pull mappings of this vendor) -> VendorSource
    source: str
    # Client class with from_settings(settings); pusher class taking that client (with `batch_limits`).
    client: str
    pusher: str
    # The push mapping write-back translates canonical fields through, and the object our fields live on.
    push_mapping: str
    company_object: str
    # Module with missing_fields(client, push_mapping), optionally install_fields(...) and MISSING_FIELDS_HELP.
    fields: str
    # Webhook object name -> the vendor object our mappings (and so ExternalId / RecordLink) use.
    webhook_objects: Mapping[str, str] = field(default_factory=_frozen)
    # Reference fields of a webhook event that name the company record directly -> the object of that id.
    references: Mapping[str, str] = field(default_factory=_frozen)
    # Objects a webhook about this vendor object should also fetch (a person's events with the person).
    also_fetch: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)
    # Concurrent write-back jobs: its share of the workers, whatever the backlog of the others.
    writeback_concurrency: int = 1
    # Where CSM tasks and in-app messages can go. An account in several task CRMs gets its task in the one
    # of lowest rank, which also orders every listing of vendors.
    tasks: bool = False
    messages: bool = False
    rank: int = 100
    # "sandbox.<vendor>:start_sandbox": start_sandbox(book) -> a RunningSandbox context manager.
    sandbox: str | None = None
    # Survey answers (connectors/surveys.py): a class with from_settings(settings) and answers(message_ids, since),
    # and the webhook topics that announce one (the answers are then read at once, not at the next 15-minute run).
    surveys: str | None = None
    survey_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("webhook_objects", "references", "also_fetch"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def writeback_queue(self) -> str:
        """One write-back queue per vendor, dequeued round-robin, so one busy CRM cannot starve the others."""
        return f"writeback-{self.name}"

    def configured(self, settings: Any) -> bool:
        return any(settings.value(attribute) for attribute in self.credentials)

    def build_source(self, settings: Any, mappings: list) -> Any:
        """The vendor's source, selecting what the given validated pull mappings read."""
        return resolve(self.source)(settings, [m for m in mappings if m.vendor == self.name and m.direction == "pull"])

    def pusher_class(self) -> type:
        return resolve(self.pusher)

    def build_pusher(self, settings: Any) -> Any:
        """The pusher on a client from `settings`; a pusher with its own settings (`from_settings`) reads them."""
        pusher, client = self.pusher_class(), resolve(self.client).from_settings(settings)
        return pusher.from_settings(client, settings) if hasattr(pusher, "from_settings") else pusher(client)

    def build_surveys(self, settings: Any) -> Any:
        """The vendor's survey-answer reader, or None when it reads none."""
        return resolve(self.surveys)(settings) if self.surveys else None

    def fields_module(self) -> ModuleType:
        return importlib.import_module(self.fields)

    def start_sandbox(self, book: Any) -> Any:
        """The vendor's bundled sandbox seeded from `book` (a context manager), imported only when asked for."""
        if self.sandbox is None:
            raise LookupError(f"{self.name} ships no sandbox")
        factory: Callable[[Any], Any] = resolve(self.sandbox)
        return factory(book)


_registered: dict[str, Connector] = {}


@cache
def _discovered() -> dict[str, Connector]:
    """Every package under connectors/ that declares a CONNECTOR."""
    found: dict[str, Connector] = {}
    for info in pkgutil.iter_modules(connectors.__path__):
        if not info.ispkg:
            continue
        record = getattr(importlib.import_module(f"connectors.{info.name}"), "CONNECTOR", None)
        if isinstance(record, Connector):
            found[record.name] = record
    return found


def register(record: Connector) -> None:
    """Add a vendor that lives outside connectors/ (it replaces a registered one of the same name)."""
    _registered[record.name] = record


def unregister(name: str) -> None:
    _registered.pop(name, None)


def connectors_by_name() -> dict[str, Connector]:
    records = {**_discovered(), **_registered}
    return {r.name: r for r in sorted(records.values(), key=lambda r: (r.rank, r.name))}


def all_connectors() -> list[Connector]:
    """Every vendor, by rank."""
    return list(connectors_by_name().values())


def vendor_names() -> tuple[str, ...]:
    return tuple(connectors_by_name())


def connector(name: str) -> Connector:
    """The record of one vendor; LookupError names the known ones."""
    records = connectors_by_name()
    if name not in records:
        raise LookupError(f"unknown vendor {name!r} (one of {', '.join(records)})")
    return records[name]
