"""The sync log: what each run did per vendor object, kept as JSON next to the store."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

MAX_LOGGED_REASONS = 1000  # per object; the quarantine table keeps them all


@dataclass
class ObjectLog:
    """What one vendor object's sync did."""

    vendor: str
    object: str
    mappings: list[str]
    since: str | None = None
    cursor: str | None = None
    pages: int = 0
    records: int = 0
    accounts: int = 0
    contacts: int = 0
    events: int = 0
    deleted: int = 0
    skipped: int = 0
    quarantined: int = 0
    reasons: list[dict] = field(default_factory=list)
    api_calls: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def quarantine(self, external_id: str | None, mapping: str, reason: str) -> None:
        self.quarantined += 1
        if len(self.reasons) < MAX_LOGGED_REASONS:
            self.reasons.append({"external_id": external_id, "mapping": mapping, "reason": reason})


@dataclass
class SyncLog:
    """One sync run: per object records, quarantined records with reasons, API calls and duration."""

    started_at: datetime
    full: bool
    objects: list[ObjectLog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    finished_at: datetime | None = None
    duration_s: float = 0.0
    path: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and not any(o.error for o in self.objects)

    @property
    def quarantined(self) -> int:
        return sum(o.quarantined for o in self.objects)

    def object(self, vendor: str, obj: str) -> ObjectLog:
        return next(o for o in self.objects if (o.vendor, o.object) == (vendor, obj))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return json.loads(json.dumps(data, default=str))

    def write(self, folder: Path) -> Path:
        """Persist as JSON under `folder` (settings.data_dir/sync-logs by default) and remember where."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}.json"
        self.path = str(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path
