"""Mapping versions: the active mapping for (vendor, name) is the latest stored MappingVersion, else the default
file <mappings dir>/<vendor>/<name>.yaml. Saving, diffing and rolling back versions lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select

from app.store.models import (
    MappingVersion,
)
from app.sync.common import _utcnow
from connectors.mapping import (
    Mapping,
    MappingError,
    Problem,
    parse_mapping,
)
from mappings import DEFAULT_DIR as SHIPPED_MAPPINGS

DEFAULT_MAPPINGS_DIR = SHIPPED_MAPPINGS


@dataclass(frozen=True)
class MappingVersionInfo:
    """One version of a mapping. Version 0 is the default file shipped in mappings/; stored versions count from 1."""

    vendor: str
    name: str
    version: int
    author: str
    created_at: datetime | None
    content: str
    origin: str  # "default" (the file) or "stored" (MappingVersion)


def default_mapping_files(vendor: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> dict[str, Path]:
    """Default mapping files of a vendor by mapping name (the file stem)."""
    folder = Path(mappings_dir) / vendor
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()}


def mapping_history(conn: Connection, vendor: str | None = None, name: str | None = None) -> list[MappingVersionInfo]:
    """Stored versions (oldest first), numbered 1.. per (vendor, name)."""
    query = select(MappingVersion).order_by(MappingVersion.id)
    if vendor:
        query = query.where(MappingVersion.vendor == vendor)
    if name:
        query = query.where(MappingVersion.object == name)
    counters: dict[tuple[str, str], int] = {}
    out = []
    for row in conn.execute(query).mappings():
        key = (row["vendor"], row["object"])
        counters[key] = counters.get(key, 0) + 1
        out.append(
            MappingVersionInfo(
                row["vendor"], row["object"], counters[key], row["author"], row["created_at"], row["content"], "stored"
            )
        )
    return out


def mapping_versions(
    conn: Connection, vendor: str, name: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR
) -> list[MappingVersionInfo]:
    """Every version of one mapping: the default file as version 0 (when there is one), then the stored ones."""
    out = []
    default = default_mapping_files(vendor, mappings_dir).get(name)
    if default is not None:
        out.append(MappingVersionInfo(vendor, name, 0, "default", None, default.read_text(encoding="utf-8"), "default"))
    return out + mapping_history(conn, vendor, name)


def _parse_version(info: MappingVersionInfo, mappings_dir: Path) -> Mapping:
    if info.origin == "default":
        path = default_mapping_files(info.vendor, mappings_dir)[info.name]
        return _parsed(info.content, str(path), info.name, info.vendor)
    where = f"<stored {info.vendor}/{info.name} v{info.version}>"
    return _parsed(info.content, where, info.name, info.vendor)


@lru_cache(maxsize=64)
def _parsed(content: str, where: str, name: str, vendor: str) -> Mapping:
    """parse_mapping once per text: a write-back worker asks for the active mapping at every job (one batch), and
    reading the YAML was 2-3 ms of each (~70 jobs in `cse demo`). A Mapping is frozen; an invalid text raises
    every time (exceptions are not cached)."""
    return parse_mapping(content, where, name, vendor)


def active_mapping(conn: Connection, vendor: str, name: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> Mapping:
    """The mapping a sync uses: the latest stored version, else the default file. KeyError when neither exists."""
    versions = mapping_versions(conn, vendor, name, mappings_dir)
    if not versions:
        raise KeyError(f"{vendor} has no mapping named {name!r}")
    return _parse_version(versions[-1], mappings_dir)


def mapping_names(conn: Connection, vendor: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR) -> list[str]:
    """Names of every mapping of a vendor: default files plus mappings that only exist as stored versions."""
    stored = conn.execute(select(MappingVersion.object).where(MappingVersion.vendor == vendor).distinct()).scalars()
    return sorted(set(default_mapping_files(vendor, mappings_dir)) | set(stored))


def active_mappings(
    conn: Connection,
    vendor: str,
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR,
    problems: list[Problem] | None = None,
) -> list[Mapping]:
    """All active mappings of a vendor. With `problems`, an invalid one is reported there and left out instead of
    raising, so one broken mapping does not stop the vendor's other objects from syncing."""
    out = []
    for name in mapping_names(conn, vendor, mappings_dir):
        try:
            out.append(active_mapping(conn, vendor, name, mappings_dir))
        except MappingError as error:
            if problems is None:
                raise
            problems.extend(error.problems)
    return out


def mappings_dir_of(settings) -> Path:
    """The deployment's mappings folder (CSE_MAPPINGS_DIR), else the packaged defaults."""
    return Path(settings.mappings_dir) if settings.mappings_dir else DEFAULT_MAPPINGS_DIR


@dataclass(frozen=True)
class ActiveMappings:
    """The active mappings of some vendors, parsed once for a run and handed to the sources and the sync alike.

    `problems` holds, per vendor, the invalid mappings that were left out (the rest still sync)."""

    by_vendor: dict[str, list[Mapping]]
    problems: dict[str, list[Problem]]

    def of(self, vendor: str) -> list[Mapping]:
        return self.by_vendor.get(vendor, [])


def load_active_mappings(settings, engine: Engine | None, vendors: list[str]) -> ActiveMappings:
    """The active mappings of `vendors` from the settings' mappings folder and, when `engine` is given, the stored
    versions too (without a store, the default files alone)."""
    directory = mappings_dir_of(settings)
    by_vendor: dict[str, list[Mapping]] = {}
    problems: dict[str, list[Problem]] = {v: [] for v in vendors}
    if engine is None:
        for vendor in vendors:
            by_vendor[vendor] = []
            for name, path in default_mapping_files(vendor, directory).items():
                try:
                    by_vendor[vendor].append(parse_mapping(path.read_text(encoding="utf-8"), str(path), name, vendor))
                except MappingError as error:
                    problems[vendor].extend(error.problems)
        return ActiveMappings(by_vendor, problems)
    with engine.connect() as conn:
        for vendor in vendors:
            by_vendor[vendor] = active_mappings(conn, vendor, directory, problems[vendor])
    return ActiveMappings(by_vendor, problems)


def save_mapping_version(
    conn: Connection, vendor: str, name: str, content: str, author: str, now: datetime | None = None
) -> MappingVersionInfo:
    """Validate and store a new version (which becomes the active one); MappingError refuses an invalid one."""
    parse_mapping(content, f"<new version of {vendor}/{name}>", name, vendor)
    return store_version(conn, vendor, name, content, author, now)


def store_version(
    conn: Connection, kind: str, name: str, content: str, author: str, now: datetime | None = None
) -> MappingVersionInfo:
    """Append an already validated version of a config file (a vendor's mapping, or kind "programs" for a
    program) with its author and time; the latest stored version is the active one."""
    created = now or _utcnow()
    conn.execute(
        insert(MappingVersion).values(vendor=kind, object=name, content=content, author=author, created_at=created)
    )
    return mapping_history(conn, kind, name)[-1]


def rollback_mapping(
    conn: Connection, vendor: str, name: str, version: int, author: str, mappings_dir: Path = DEFAULT_MAPPINGS_DIR
) -> MappingVersionInfo:
    """Make an older version active again by storing its content as a new version (history is never rewritten)."""
    versions = {v.version: v for v in mapping_versions(conn, vendor, name, mappings_dir)}
    if version not in versions:
        raise KeyError(f"{vendor}/{name} has no version {version} (versions: {sorted(versions)})")
    return save_mapping_version(conn, vendor, name, versions[version].content, author)
