"""Acme's pull: pages of companies changed since a cursor, selecting the fields the validated mappings read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from connectors.mapping import Mapping
from connectors.source import PullStats
from tests.fake_vendor.client import VENDOR, AcmeClient
from tests.fake_vendor.sandbox import MAX_PAGE

OBJECTS = ("companies",)


class AcmeSource:
    vendor = VENDOR

    def __init__(self, client: AcmeClient, fields: dict[str, list[str]]) -> None:
        self.client = client
        self.fields = fields

    @classmethod
    def from_settings(cls, settings: Any, mappings: list[Mapping]) -> AcmeSource:
        fields: dict[str, set[str]] = {}
        for mapping in mappings:
            fields.setdefault(mapping.object, set()).update(path for _, path, _ in mapping.source_paths())
        return cls(AcmeClient.from_settings(settings), {obj: sorted(paths) for obj, paths in fields.items()})

    @property
    def stats(self) -> PullStats:
        return self.client.stats

    def objects(self) -> tuple[str, ...]:
        return tuple(obj for obj in OBJECTS if obj in self.fields)

    def _got(self, obj: str, records: list[dict]) -> list[dict]:
        self.stats.records += len(records)
        self.stats.by_object[obj] = self.stats.by_object.get(obj, 0) + len(records)
        return records

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        params = {"limit": MAX_PAGE, "fields": ",".join(self.fields[obj])}
        if since is not None:
            params["since"] = since.isoformat()
        cursor = None
        while True:
            body = self.client.request("GET", obj, params={**params, "after": cursor} if cursor else params)
            yield self._got(obj, body["results"])
            cursor = body.get("next")
            if not cursor:
                return

    def fetch(self, obj: str, ids: list[str], since: datetime | None = None) -> list[dict]:
        body = self.client.request("GET", obj, params={"ids": ",".join(ids), "fields": ",".join(self.fields[obj])})
        return self._got(obj, body["results"])
