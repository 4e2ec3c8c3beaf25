"""Validating one mapping (mappings/README.md) so an invalid one is refused with file, line and field: its top-level
keys and `when:` conditions here, its fields in fields.py; finding and loading files is files.py's.

YAML is parsed with a loader that remembers the line of every key; validation collects every problem instead of
stopping at the first, so an admin fixes a file in one round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.mapping.checks import Checker, has_text, suggest
from connectors.mapping.fields import pull_fields, push_fields
from connectors.mapping.lines import LineDict, MappingError, read_yaml
from connectors.mapping.model import Condition, FieldSpec, Mapping
from connectors.mapping.schema import (
    ENTITIES,
    ENTITY_SCHEMAS,
)

DIRECTIONS = ("pull", "push")
TOP_KEYS = {
    "vendor": "vendor name",
    "object": "vendor object",
    "direction": "pull or push",
    "entity": "account, contact or event (pull)",
    "id": "source field with the record id (pull)",
    "updated": "source field the cursor follows (pull)",
    "deleted": "source field flagging deleted/archived records (pull)",
    "account": "source field with the owning company's vendor id (pull)",
    "account_object": "vendor object that id belongs to (pull)",
    "when": "conditions a record must meet to belong to this mapping (pull)",
    "description": "free text for admins",
    "fields": "canonical field -> spec",
}
PULL_ONLY = ("entity", "id", "updated", "deleted", "account", "account_object", "when")
CONDITION_KEYS = ("present", "truthy", "in", "not_in")
CONDITION_HELP = "{present: true|false}, {truthy: true|false}, {in: [...]} or {not_in: [...]}"
MAX_OBJECT_LENGTH = 32  # SyncCursor.object / MappingVersion.object
VENDOR_KIND, IMPORT_KIND = "vendor", "import"  # the two kinds of mapping file (mappings/README.md)


def registered_vendors() -> tuple[str, ...]:
    """The registered vendors, read when a mapping is checked (vendor packages import this module)."""
    from connectors.registry import vendor_names

    return vendor_names()


def parse_mapping(
    text: str, file: str = "<string>", name: str | None = None, expected_vendor: str | None = None
) -> Mapping:
    """Parse and validate one mapping; raise MappingError naming file, line and field for every problem."""
    check = Checker(file)
    root = read_yaml(text, file)
    if not isinstance(root, LineDict):
        check.add(1, "mapping", "the file must be a YAML mapping of vendor, object, direction, ..., fields")
        raise MappingError(check.problems)
    mapping = _validate(root, check, text, name or Path(file).stem, expected_vendor)
    if check.problems or mapping is None:
        raise MappingError(check.problems)
    return mapping


def _validate(root: LineDict, check: Checker, text: str, name: str, expected_vendor: str | None) -> Mapping | None:
    check.keys(root, "")
    line = root.lines.get
    for key in root:
        if key not in TOP_KEYS:
            check.add(line(key), str(key), f"unknown key{suggest(key, TOP_KEYS)} (allowed: {', '.join(TOP_KEYS)})")

    for key in ("vendor", "object", "direction", "fields"):
        if key not in root:
            check.add(root.line, key, f"missing required key '{key}' ({TOP_KEYS[key]})")
    vendor, direction = root.get("vendor"), root.get("direction")
    vendors = registered_vendors()
    if "vendor" in root and vendor not in vendors:
        hint = suggest(vendor, vendors)
        check.add(line("vendor"), "vendor", f"unknown vendor {vendor!r}{hint} ({', '.join(vendors)})")
    elif expected_vendor and vendor != expected_vendor:
        check.add(line("vendor"), "vendor", f"file is under mappings/{expected_vendor}/ but says vendor {vendor!r}")
    obj = root.get("object")
    if "object" in root and not has_text(obj):
        check.add(line("object"), "object", "must name the vendor object, e.g. companies")
    elif has_text(obj) and len(obj) > MAX_OBJECT_LENGTH:
        check.add(line("object"), "object", f"at most {MAX_OBJECT_LENGTH} characters")
    if "direction" in root and direction not in DIRECTIONS:
        check.add(line("direction"), "direction", f"must be pull or push, not {direction!r}")
    if len(name) > MAX_OBJECT_LENGTH:
        check.add(root.line, "name", f"mapping name {name!r} (the file name) is longer than {MAX_OBJECT_LENGTH}")
    description = root.get("description")
    if description is not None and not isinstance(description, str):
        check.add(line("description"), "description", "must be text")

    fields = root.get("fields")
    if "fields" in root and (not isinstance(fields, LineDict) or not fields):
        check.add(line("fields"), "fields", "must be a non-empty mapping of canonical field -> spec")
        fields = None

    common = dict(
        name=name, vendor=vendor, object=obj, direction=direction, content=text, description=description,
        lines={str(k): v for k, v in root.lines.items()},
    )  # fmt: skip
    if direction == "push":
        for key in PULL_ONLY:
            if key in root:
                check.add(line(key), key, "only pull mappings have this key")
        specs = push_fields(fields, check) if fields is not None else {}
        return Mapping(file=check.file, fields=specs, **common)
    if direction != "pull":
        return None
    return _pull(root, fields, check, common)


def _pull(root: LineDict, fields: LineDict | None, check: Checker, common: dict) -> Mapping | None:
    line = root.lines.get
    entity = root.get("entity")
    if "entity" not in root:
        check.add(root.line, "entity", f"missing required key 'entity' ({', '.join(ENTITIES)})")
    elif entity not in ENTITIES:
        check.add(line("entity"), "entity", f"unknown entity {entity!r}{suggest(entity, ENTITIES)}")
        entity = None
    for key in ("id", "updated"):
        if key not in root:
            check.add(root.line, key, f"missing required key '{key}' ({TOP_KEYS[key]})")
    for key in ("id", "updated", "deleted", "account", "account_object"):
        if key in root and not has_text(root[key]):
            check.add(line(key), key, "must be a source field name")
    has_account, has_object = "account" in root, "account_object" in root
    if entity in ("contact", "event") and not has_account:
        check.add(root.line, "account", f"a {entity} mapping needs 'account' (source field of the company id)")
    if has_account != has_object:
        missing = "account_object" if has_account else "account"
        check.add(line("account") or line("account_object"), missing, "'account' and 'account_object' go together")
    when = _conditions(root.get("when"), line("when"), check) if "when" in root else ()

    specs: dict[str, FieldSpec] = {}
    if fields is not None and entity is not None:
        schema = ENTITY_SCHEMAS[entity]
        specs = pull_fields(fields, schema, entity, check)
        enrichment = entity == "account" and has_account
        for cfield in schema.values():
            if cfield.required and cfield.name not in fields and not enrichment:
                article = "an" if entity == "account" else "a"
                message = f"{article} {entity} mapping must map '{cfield.name}'"
                check.add(line("fields"), f"fields.{cfield.name}", message)
    if entity is None:
        return None
    return Mapping(
        file=check.file, fields=specs, entity=entity, id=root.get("id"), updated=root.get("updated"),
        deleted=root.get("deleted"), account=root.get("account"), account_object=root.get("account_object"),
        when=when, **common,
    )  # fmt: skip


def _conditions(node: Any, line: int | None, check: Checker) -> tuple[Condition, ...]:
    """`when:` is a list of conditions that must all hold: `{from: Field, in: [...]}` (or not_in / present /
    truthy), or a bare source field meaning "is truthy"; a single condition may stand without the list, and the
    mapping form `{Field: {in: [...]}}` is read too."""
    if isinstance(node, LineDict) and "from" not in node:
        return _condition_map(node, line, check)
    items = node if isinstance(node, list) else [node]
    if not items:
        check.add(line, "when", f"must list conditions: a source field or {{from: field, {CONDITION_HELP}}}")
        return ()
    out = []
    for index, item in enumerate(items):
        where = f"when[{index}]" if isinstance(node, list) else "when"
        at = item.line if isinstance(item, LineDict) else line
        if has_text(item):
            out.append(Condition(item, "truthy", True, line))
            continue
        if not isinstance(item, LineDict) or not has_text(item.get("from")):
            check.add(at, where, f"must be a source field or {{from: field, {CONDITION_HELP}}}")
            continue
        check.keys(item, where)
        ops = [k for k in item if k != "from"]
        if len(ops) != 1 or ops[0] not in CONDITION_KEYS:
            check.add(at, where, f"needs exactly one of {CONDITION_HELP} beside 'from'")
            continue
        condition = _condition(item["from"], ops[0], item[ops[0]], item.lines.get(ops[0], at), where, check)
        if condition is not None:
            out.append(condition)
    return tuple(out)


def _condition_map(node: LineDict, line: int | None, check: Checker) -> tuple[Condition, ...]:
    if not node:
        check.add(line, "when", f"must list conditions: a source field or {{from: field, {CONDITION_HELP}}}")
        return ()
    check.keys(node, "when")
    out = []
    for path, spec in node.items():
        where, at = f"when.{path}", node.lines.get(path)
        if not has_text(path):
            check.add(at, where, "must be a source field name")
            continue
        if not isinstance(spec, LineDict) or len(spec) != 1 or next(iter(spec)) not in CONDITION_KEYS:
            check.add(at, where, f"must be exactly one of {CONDITION_HELP}")
            continue
        op, arg = next(iter(spec.items()))
        condition = _condition(path, op, arg, spec.lines.get(op, at), where, check)
        if condition is not None:
            out.append(condition)
    return tuple(out)


def _condition(path: str, op: str, arg: Any, at: int | None, where: str, check: Checker) -> Condition | None:
    if op in ("present", "truthy") and not isinstance(arg, bool):
        check.add(at, f"{where}.{op}", "must be true or false")
        return None
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            check.add(at, f"{where}.{op}", "must be a non-empty list of values")
            return None
        arg = tuple(arg)
    return Condition(path, op, arg, at)
