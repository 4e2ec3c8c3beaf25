"""Checking a mapping's `fields:` against the canonical schema: a pull field's source, type, enum table, default and
scale; a push field's CRM name and type."""

from __future__ import annotations

from typing import Any

from connectors.mapping.checks import Checker, has_text, suggest
from connectors.mapping.convert import CONVERTERS, ConversionError, EnumTable
from connectors.mapping.lines import LineDict
from connectors.mapping.model import FieldSpec
from connectors.mapping.schema import PUSH_SCHEMA, PUSH_TYPES_FOR_KIND, TYPES, TYPES_FOR_KIND, CanonicalField

FIELD_KEYS = ("from", "value", "type", "values", "required", "default", "scale", "fallback")
PUSH_FIELD_KEYS = ("to", "type", "values")


def _canonical(value: Any, cfield: CanonicalField, convert_as: str) -> Any:
    """Convert a constant written in the mapping (value, default, enum output) and check the allowed choices."""
    converted = CONVERTERS[convert_as](value)
    if cfield.choices is not None and converted not in cfield.choices:
        raise ConversionError(f"{converted!r} is not one of {', '.join(cfield.choices)}")
    return converted


def _output_type(cfield: CanonicalField, mapping_type: str) -> str:
    """The conversion constants go through: enum constants are canonical values, so they take the field's kind."""
    return cfield.kind if mapping_type == "enum" else mapping_type


def pull_fields(fields: LineDict, schema: dict[str, CanonicalField], entity: str, check: Checker):
    check.keys(fields, "fields")
    specs: dict[str, FieldSpec] = {}
    for name, spec in fields.items():
        where, at = f"fields.{name}", fields.lines.get(name)
        cfield = schema.get(name)
        if cfield is None:
            hint = suggest(name, schema)
            check.add(at, where, f"unknown canonical field for {entity}{hint} (known: {', '.join(schema)})")
            continue
        if not isinstance(spec, LineDict):
            check.add(at, where, "must be a mapping like {from: source_field, type: string}")
            continue
        parsed = _pull_field(cfield, spec, where, at, check)
        if parsed is not None:
            specs[name] = parsed
    return specs


def _pull_field(cfield: CanonicalField, spec: LineDict, where: str, at: int | None, check: Checker):
    check.keys(spec, where)
    lines = spec.lines
    ok = True
    for key in spec:
        if key not in FIELD_KEYS:
            check.add(lines.get(key, at), f"{where}.{key}", f"unknown key{suggest(key, FIELD_KEYS)}")
            ok = False
    has_from, has_value = "from" in spec, "value" in spec
    if has_from == has_value:
        check.add(at, where, "needs exactly one of 'from' (a source field) or 'value' (a constant)")
        return None
    if has_from and not has_text(spec["from"]):
        check.add(lines.get("from", at), f"{where}.from", "must be a source field name (dotted paths allowed)")
        ok = False

    allowed = TYPES_FOR_KIND[cfield.kind]
    mtype = spec.get("type", allowed[0])
    if mtype not in TYPES:
        check.add(lines.get("type", at), f"{where}.type", f"unknown type {mtype!r}{suggest(mtype, TYPES)}")
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


def _enum(cfield: CanonicalField, spec: LineDict, where: str, at: int | None, check: Checker):
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


def push_fields(fields: LineDict, check: Checker) -> dict[str, FieldSpec]:
    check.keys(fields, "fields")
    specs = {}
    for name, spec in fields.items():
        where, at = f"fields.{name}", fields.lines.get(name)
        cfield = PUSH_SCHEMA.get(name)
        if cfield is None:
            check.add(at, where, f"unknown score field{suggest(name, PUSH_SCHEMA)} (known: {', '.join(PUSH_SCHEMA)})")
            continue
        if not isinstance(spec, LineDict):
            check.add(at, where, "must be a mapping like {to: crm_field, type: number}")
            continue
        check.keys(spec, where)
        ok = True
        for key in spec:
            if key not in PUSH_FIELD_KEYS:
                check.add(spec.lines.get(key, at), f"{where}.{key}", f"unknown key{suggest(key, PUSH_FIELD_KEYS)}")
                ok = False
        if not has_text(spec.get("to")):
            check.add(spec.lines.get("to", at), f"{where}.to", "needs 'to': the CRM field written")
            ok = False
        allowed = PUSH_TYPES_FOR_KIND[cfield.kind]
        mtype = spec.get("type", allowed[0])
        if mtype not in TYPES:
            check.add(spec.lines.get("type", at), f"{where}.type", f"unknown type {mtype!r}{suggest(mtype, TYPES)}")
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
