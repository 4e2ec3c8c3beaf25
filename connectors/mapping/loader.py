"""Reading and validating mapping files (mappings/README.md) so an invalid one is refused with file, line and field.

YAML is parsed with a loader that remembers the line of every key; validation collects every problem instead of
stopping at the first, so an admin fixes a file in one round trip.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.mapping.convert import CONVERTERS, ConversionError, EnumTable
from connectors.mapping.lines import LineDict, MappingError, Problem, read_yaml
from connectors.mapping.schema import (
    ENTITIES,
    ENTITY_SCHEMAS,
    PUSH_SCHEMA,
    PUSH_TYPES_FOR_KIND,
    TYPES,
    TYPES_FOR_KIND,
    CanonicalField,
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
FIELD_KEYS = ("from", "value", "type", "values", "required", "default", "scale", "fallback")
PUSH_FIELD_KEYS = ("to", "type", "values")
CONDITION_KEYS = ("present", "truthy", "in", "not_in")
CONDITION_HELP = "{present: true|false}, {truthy: true|false}, {in: [...]} or {not_in: [...]}"
MAX_OBJECT_LENGTH = 32  # SyncCursor.object / MappingVersion.object
VENDOR_KIND, IMPORT_KIND = "vendor", "import"  # the two kinds of mapping file (mappings/README.md)


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


class _Checker:
    """Collects problems for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int | None, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, where, message))

    def keys(self, node: LineDict, where: str) -> None:
        prefix = f"{where}." if where else ""
        for raw, line in node.duplicates:
            self.add(line, f"{prefix}{raw}", "duplicate key (YAML would silently keep the last one)")
        for raw, line in node.bad_keys:
            self.add(line, f"{prefix}{raw}", "a key must be a plain value")


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def parse_mapping(
    text: str, file: str = "<string>", name: str | None = None, expected_vendor: str | None = None
) -> Mapping:
    """Parse and validate one mapping; raise MappingError naming file, line and field for every problem."""
    check = _Checker(file)
    root = read_yaml(text, file)
    if not isinstance(root, LineDict):
        check.add(1, "mapping", "the file must be a YAML mapping of vendor, object, direction, ..., fields")
        raise MappingError(check.problems)
    mapping = _validate(root, check, text, name or Path(file).stem, expected_vendor)
    if check.problems or mapping is None:
        raise MappingError(check.problems)
    return mapping


def _validate(root: LineDict, check: _Checker, text: str, name: str, expected_vendor: str | None) -> Mapping | None:
    check.keys(root, "")
    line = root.lines.get
    for key in root:
        if key not in TOP_KEYS:
            check.add(line(key), str(key), f"unknown key{_suggest(key, TOP_KEYS)} (allowed: {', '.join(TOP_KEYS)})")

    for key in ("vendor", "object", "direction", "fields"):
        if key not in root:
            check.add(root.line, key, f"missing required key '{key}' ({TOP_KEYS[key]})")
    vendor, direction = root.get("vendor"), root.get("direction")
    vendors = _vendors()
    if "vendor" in root and vendor not in vendors:
        hint = _suggest(vendor, vendors)
        check.add(line("vendor"), "vendor", f"unknown vendor {vendor!r}{hint} ({', '.join(vendors)})")
    elif expected_vendor and vendor != expected_vendor:
        check.add(line("vendor"), "vendor", f"file is under mappings/{expected_vendor}/ but says vendor {vendor!r}")
    obj = root.get("object")
    if "object" in root and not _text(obj):
        check.add(line("object"), "object", "must name the vendor object, e.g. companies")
    elif _text(obj) and len(obj) > MAX_OBJECT_LENGTH:
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
        specs = _push_fields(fields, check) if fields is not None else {}
        return Mapping(file=check.file, fields=specs, **common)
    if direction != "pull":
        return None
    return _pull(root, fields, check, common)


def _pull(root: LineDict, fields: LineDict | None, check: _Checker, common: dict) -> Mapping | None:
    line = root.lines.get
    entity = root.get("entity")
    if "entity" not in root:
        check.add(root.line, "entity", f"missing required key 'entity' ({', '.join(ENTITIES)})")
    elif entity not in ENTITIES:
        check.add(line("entity"), "entity", f"unknown entity {entity!r}{_suggest(entity, ENTITIES)}")
        entity = None
    for key in ("id", "updated"):
        if key not in root:
            check.add(root.line, key, f"missing required key '{key}' ({TOP_KEYS[key]})")
    for key in ("id", "updated", "deleted", "account", "account_object"):
        if key in root and not _text(root[key]):
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
        specs = _pull_fields(fields, schema, entity, check)
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


def _conditions(node: Any, line: int | None, check: _Checker) -> tuple[Condition, ...]:
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
        if _text(item):
            out.append(Condition(item, "truthy", True, line))
            continue
        if not isinstance(item, LineDict) or not _text(item.get("from")):
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


def _condition_map(node: LineDict, line: int | None, check: _Checker) -> tuple[Condition, ...]:
    if not node:
        check.add(line, "when", f"must list conditions: a source field or {{from: field, {CONDITION_HELP}}}")
        return ()
    check.keys(node, "when")
    out = []
    for path, spec in node.items():
        where, at = f"when.{path}", node.lines.get(path)
        if not _text(path):
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


def _condition(path: str, op: str, arg: Any, at: int | None, where: str, check: _Checker) -> Condition | None:
    if op in ("present", "truthy") and not isinstance(arg, bool):
        check.add(at, f"{where}.{op}", "must be true or false")
        return None
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            check.add(at, f"{where}.{op}", "must be a non-empty list of values")
            return None
        arg = tuple(arg)
    return Condition(path, op, arg, at)


def _canonical(value: Any, cfield: CanonicalField, convert_as: str) -> Any:
    """Convert a constant written in the mapping (value, default, enum output) and check the allowed choices."""
    converted = CONVERTERS[convert_as](value)
    if cfield.choices is not None and converted not in cfield.choices:
        raise ConversionError(f"{converted!r} is not one of {', '.join(cfield.choices)}")
    return converted


def _output_type(cfield: CanonicalField, mapping_type: str) -> str:
    """The conversion constants go through: enum constants are canonical values, so they take the field's kind."""
    return cfield.kind if mapping_type == "enum" else mapping_type


def _pull_fields(fields: LineDict, schema: dict[str, CanonicalField], entity: str, check: _Checker):
    check.keys(fields, "fields")
    specs: dict[str, FieldSpec] = {}
    for name, spec in fields.items():
        where, at = f"fields.{name}", fields.lines.get(name)
        cfield = schema.get(name)
        if cfield is None:
            hint = _suggest(name, schema)
            check.add(at, where, f"unknown canonical field for {entity}{hint} (known: {', '.join(schema)})")
            continue
        if not isinstance(spec, LineDict):
            check.add(at, where, "must be a mapping like {from: source_field, type: string}")
            continue
        parsed = _pull_field(cfield, spec, where, at, check)
        if parsed is not None:
            specs[name] = parsed
    return specs


def _pull_field(cfield: CanonicalField, spec: LineDict, where: str, at: int | None, check: _Checker):
    check.keys(spec, where)
    lines = spec.lines
    ok = True
    for key in spec:
        if key not in FIELD_KEYS:
            check.add(lines.get(key, at), f"{where}.{key}", f"unknown key{_suggest(key, FIELD_KEYS)}")
            ok = False
    has_from, has_value = "from" in spec, "value" in spec
    if has_from == has_value:
        check.add(at, where, "needs exactly one of 'from' (a source field) or 'value' (a constant)")
        return None
    if has_from and not _text(spec["from"]):
        check.add(lines.get("from", at), f"{where}.from", "must be a source field name (dotted paths allowed)")
        ok = False

    allowed = TYPES_FOR_KIND[cfield.kind]
    mtype = spec.get("type", allowed[0])
    if mtype not in TYPES:
        check.add(lines.get("type", at), f"{where}.type", f"unknown type {mtype!r}{_suggest(mtype, TYPES)}")
        return None
    if mtype not in allowed:
        check.add(
            lines.get("type", at), f"{where}.type",
            f"type {mtype} cannot feed {cfield.name} (a {cfield.kind}); use {' or '.join(allowed)}",
        )  # fmt: skip
        return None

    enum = enum_out = None
    if mtype == "enum":
        if has_value:
            check.add(lines.get("type", at), f"{where}.type", "a constant 'value' cannot be an enum")
            return None
        enum, enum_out = _enum(cfield, spec, where, at, check)
        ok = ok and enum is not None
    elif "values" in spec:
        check.add(lines.get("values", at), f"{where}.values", "only an enum has 'values'")
        ok = False

    required = spec.get("required", False)
    if not isinstance(required, bool):
        check.add(lines.get("required", at), f"{where}.required", "must be true or false")
        ok = False

    fallback = spec.get("fallback", False)
    if not isinstance(fallback, bool):
        check.add(lines.get("fallback", at), f"{where}.fallback", "must be true or false")
        ok = False

    scale = spec.get("scale")
    if scale is not None:
        if mtype not in ("number", "integer"):
            check.add(lines.get("scale", at), f"{where}.scale", "only number and integer fields can be scaled")
            ok = False
        elif isinstance(scale, bool) or not isinstance(scale, int | float):
            check.add(lines.get("scale", at), f"{where}.scale", f"must be a number, not {scale!r}")
            ok = False

    convert_as = _output_type(cfield, mtype)
    default = None
    if spec.get("default") is not None:
        try:
            default = _canonical(spec["default"], cfield, convert_as)
        except ConversionError as error:
            check.add(lines.get("default", at), f"{where}.default", f"bad default for type {mtype}: {error}")
            ok = False
    value = None
    if has_value:
        try:
            value = _canonical(spec["value"], cfield, convert_as) if spec["value"] is not None else None
        except ConversionError as error:
            check.add(lines.get("value", at), f"{where}.value", f"bad constant for type {mtype}: {error}")
            ok = False
    if not ok:
        return None
    return FieldSpec(
        name=cfield.name, kind=cfield.kind, type=mtype, line=at, source=spec.get("from"), value=value,
        has_value=has_value, enum=enum, enum_out=enum_out, required=required or cfield.required, default=default,
        scale=float(scale) if scale is not None else None, choices=cfield.choices, fallback=fallback,
    )  # fmt: skip


def _enum(cfield: CanonicalField, spec: LineDict, where: str, at: int | None, check: _Checker):
    values = spec.get("values")
    vline = spec.lines.get("values", at)
    if not isinstance(values, LineDict) or not values:
        check.add(vline, f"{where}.values", "an enum needs 'values': a mapping of source value -> canonical value")
        return None, None
    check.keys(values, f"{where}.values")
    pairs, outputs, ok = [], {}, True
    for key, out in values.items():
        try:
            converted = _canonical(out, cfield, cfield.kind) if out is not None else None
        except ConversionError as error:
            check.add(values.lines.get(key, vline), f"{where}.values.{values.raw[key]}", str(error))
            ok = False
            continue
        pairs.append((key, values.raw[key], converted))
        outputs[key] = converted
    return (EnumTable(pairs), outputs) if ok else (None, None)


def _push_fields(fields: LineDict, check: _Checker) -> dict[str, FieldSpec]:
    check.keys(fields, "fields")
    specs = {}
    for name, spec in fields.items():
        where, at = f"fields.{name}", fields.lines.get(name)
        cfield = PUSH_SCHEMA.get(name)
        if cfield is None:
            check.add(at, where, f"unknown score field{_suggest(name, PUSH_SCHEMA)} (known: {', '.join(PUSH_SCHEMA)})")
            continue
        if not isinstance(spec, LineDict):
            check.add(at, where, "must be a mapping like {to: crm_field, type: number}")
            continue
        check.keys(spec, where)
        ok = True
        for key in spec:
            if key not in PUSH_FIELD_KEYS:
                check.add(spec.lines.get(key, at), f"{where}.{key}", f"unknown key{_suggest(key, PUSH_FIELD_KEYS)}")
                ok = False
        if not _text(spec.get("to")):
            check.add(spec.lines.get("to", at), f"{where}.to", "needs 'to': the CRM field written")
            ok = False
        allowed = PUSH_TYPES_FOR_KIND[cfield.kind]
        mtype = spec.get("type", allowed[0])
        if mtype not in TYPES:
            check.add(spec.lines.get("type", at), f"{where}.type", f"unknown type {mtype!r}{_suggest(mtype, TYPES)}")
            ok = False
        elif mtype not in allowed:
            check.add(
                spec.lines.get("type", at), f"{where}.type",
                f"type {mtype} cannot hold {name} (a {cfield.kind}); use {' or '.join(allowed)}",
            )  # fmt: skip
            ok = False
        enum = enum_out = None
        if mtype == "enum":
            values = spec.get("values")
            if not isinstance(values, LineDict) or not values:
                check.add(spec.lines.get("values", at), f"{where}.values", "an enum needs 'values'")
                ok = False
            else:
                enum_out = dict(values)
                enum = EnumTable([(k, values.raw[k], v) for k, v in values.items()])
        elif "values" in spec:
            check.add(spec.lines.get("values", at), f"{where}.values", "only an enum has 'values'")
            ok = False
        if ok:
            specs[name] = FieldSpec(
                name=name, kind=cfield.kind, type=mtype, line=at, to=spec["to"], enum=enum, enum_out=enum_out
            )
    return specs


def _vendors() -> tuple[str, ...]:
    """The registered vendors, read when a mapping is checked (vendor packages import this module)."""
    from connectors.registry import vendor_names

    return vendor_names()


def _vendor_of_folder(path: Path) -> str | None:
    return path.parent.name if path.parent.name in _vendors() else None


def load_mapping(path: str | Path) -> Mapping:
    """Read one mapping file; a file under mappings/<vendor>/ must say that vendor."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError([Problem(str(path), None, "file", f"cannot read: {error}")]) from None
    return parse_mapping(text, str(path), path.stem, _vendor_of_folder(path))


def file_kind(path: Path) -> str:
    """Which schema a mapping file follows (mappings/README.md): a tabular import mapping (app/ml/importer.py) lives
    under an `import/` folder or says `kind: import`; every other file is a vendor mapping."""
    if path.parent.name == IMPORT_KIND:
        return IMPORT_KIND
    try:
        root = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, MappingError):
        return VENDOR_KIND  # the vendor loader reports why the file cannot be read
    return IMPORT_KIND if isinstance(root, dict) and root.get("kind") == IMPORT_KIND else VENDOR_KIND


def mapping_files(path: str | Path, kind: str | None = None) -> list[Path]:
    """The mapping files at `path` (the file itself, or every *.yaml / *.yml below a folder), of `kind` if given."""
    path = Path(path)
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()) if path.is_dir() else [path]
    )
    return [f for f in files if kind is None or file_kind(f) == kind]


def load_mapping_dir(directory: str | Path) -> list[Mapping]:
    """Every mapping in a folder, validated; MappingError lists the problems of the invalid ones."""
    mappings, problems = validate_path(directory)
    if problems:
        raise MappingError(problems)
    return mappings


def validate_path(path: str | Path) -> tuple[list[Mapping], list[Problem]]:
    """Validate every vendor mapping file at `path` (import mappings are app/ml/importer.py's); also refuses two
    files of one vendor sharing a name."""
    mappings, problems = [], []
    if not mapping_files(path):
        problems.append(Problem(str(path), None, "path", "no mapping files (*.yaml) found"))
    for file in mapping_files(path, VENDOR_KIND):
        try:
            mappings.append(load_mapping(file))
        except MappingError as error:
            problems.extend(error.problems)
    seen: dict[tuple[str, str], str] = {}
    for mapping in mappings:
        key = (mapping.vendor, mapping.name)
        if key in seen:
            problems.append(Problem(mapping.file, 1, "name", f"{mapping.vendor} already has a mapping {mapping.name!r} "
                                    f"({seen[key]}); names must be unique per vendor"))  # fmt: skip
        seen[key] = mapping.file
    return mappings, problems


def validate_against_fields(mapping: Mapping, available: set[str]) -> list[Problem]:
    """Check every source field the mapping reads against the CRM's own field list (describe / properties / ...).

    A dotted path passes when the CRM lists it or any prefix of it (`custom_attributes` covers
    `custom_attributes.plan`), since CRMs list nested objects by their top-level name.
    """
    problems = []
    for where, path, line in mapping.source_paths():
        parts = path.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if not prefixes & available:
            hint = _suggest(path, available)
            problems.append(
                Problem(mapping.file, line, where, f"{mapping.vendor} {mapping.object} has no field {path!r}{hint}")
            )
    return problems


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
