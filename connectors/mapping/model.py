"""What a validated mapping is (its conditions and field specs), and how a mapping reads a source path from a
record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.mapping.convert import EnumTable


@dataclass(frozen=True)
class Condition:
    """`when:` entry: the record's `path` must be present/absent, (not) truthy, or (not) among `values`."""

    path: str
    op: str  # present | truthy | in | not_in
    arg: Any
    line: int | None


@dataclass(frozen=True)
class FieldSpec:
    """How one canonical field is read (pull) or which CRM field it is written to (push)."""

    name: str
    kind: str
    type: str
    line: int | None
    source: str | None = None
    value: Any = None
    has_value: bool = False
    enum: EnumTable | None = None
    enum_out: dict[Any, Any] | None = None
    required: bool = False
    default: Any = None
    scale: float | None = None
    to: str | None = None
    choices: tuple[str, ...] | None = None
    # A fallback field fills an account's value only while no other vendor has given one (a CRM owns the name).
    fallback: bool = False


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file. `name` (the file stem) identifies it among a vendor's mappings and versions."""

    name: str
    file: str
    vendor: str
    object: str
    direction: str
    fields: dict[str, FieldSpec]
    entity: str | None = None
    id: str | None = None
    updated: str | None = None
    deleted: str | None = None
    account: str | None = None
    account_object: str | None = None
    when: tuple[Condition, ...] = ()
    description: str | None = None
    content: str = ""
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def enrichment(self) -> bool:
        """An account mapping that names `account` updates the company it points to instead of being one."""
        return self.entity == "account" and self.account is not None

    def source_paths(self) -> list[tuple[str, str, int | None]]:
        """(where, source path, line) of every source field this mapping reads, for checks against a CRM."""
        paths = [(k, getattr(self, k), self.lines.get(k)) for k in ("id", "updated", "deleted", "account")]
        paths = [(k, p, line) for k, p, line in paths if p]
        paths += [(f"when.{c.path}", c.path, c.line) for c in self.when]
        paths += [(f"fields.{s.name}.from", s.source, s.line) for s in self.fields.values() if s.source]
        return paths


def get_path(record: dict, path: str) -> Any:
    """Read a dotted path from a nested record; a numeric part indexes a list (`companies.data.0.id`).

    A key that itself contains dots (some connectors flatten) is tried before descending.
    """
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return None
            node = node[part]
        elif isinstance(node, list | tuple):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return node
