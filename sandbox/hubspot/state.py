"""The portal behind the HubSpot sandbox: records, properties, associations and owners, held in memory.

Everything the HTTP layer does goes through here, so the rules HubSpot enforces on writes (properties must exist,
values must fit their type, read-only properties refuse values, unique values stay unique) and the bookkeeping it
does on every write (hs_lastmodifieddate, calculated properties, primary-company sync) hold equally for the API, the
seeding code and tests that poke the state directly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sandbox.faults import Faults
from sandbox.hubspot import schema
from sandbox.hubspot.schema import OBJECT_TYPES, PropertyDef
from sandbox.hubspot.values import as_wire, iso_ms, parse_date, parse_datetime, parse_number, to_ms


@dataclass
class SandboxConfig:
    """Knobs a test or the demo can turn; the defaults are HubSpot's documented limits for a private app."""

    access_tokens: tuple[str, ...] = ("sandbox-token",)
    list_max_limit: int = schema.LIST_MAX_LIMIT
    search_max_limit: int = schema.SEARCH_MAX_LIMIT
    search_total_cap: int = schema.SEARCH_TOTAL_CAP
    batch_max_inputs: int = schema.BATCH_MAX_INPUTS
    rate_limit_max: int | None = schema.RATE_LIMIT_MAX  # None: no ten-secondly limit
    rate_limit_interval_ms: int = schema.RATE_LIMIT_INTERVAL_MS
    search_requests_per_second: int | None = schema.SEARCH_REQUESTS_PER_SECOND  # None: unlimited
    partial_failure_category: str = "VALIDATION_ERROR"


@dataclass
class Record:
    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None


class InputError(Exception):
    """A write HubSpot would refuse; carries the HTTP status, category and the per-property error list."""

    def __init__(
        self,
        message: str,
        category: str = "VALIDATION_ERROR",
        status: int = 400,
        errors: list[dict] | None = None,
        context: dict | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.status = status
        self.errors = errors or []
        self.context = context or {}
        self.sub_category = sub_category


def _property_error(name: str, message: str, code: str) -> dict:
    return {"isValid": False, "message": message, "error": code, "name": name, "localizedErrorMessage": message}


def invalid_properties(errors: list[dict]) -> InputError:
    """HubSpot's body for refused property values: the JSON list of per-property verdicts inside the message."""
    return InputError(
        f"Property values were not valid: {json.dumps(errors)}",
        errors=[
            {"message": e["message"], "code": e["error"], "context": {"propertyName": [e["name"]]}} for e in errors
        ],
        context={"propertyName": [e["name"] for e in errors]},
    )


class RollingWindow:
    """At most `limit` admitted requests in any `interval` seconds; refused requests are not counted."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, now: float | None = None) -> tuple[bool, int]:
        """(admitted, remaining in the window after this request)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._hits and self._hits[0] <= now - self.interval:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0
            self._hits.append(now)
            return True, self.limit - len(self._hits)

    def remaining(self) -> int:
        now = time.monotonic()
        with self._lock:
            while self._hits and self._hits[0] <= now - self.interval:
                self._hits.popleft()
            return max(0, self.limit - len(self._hits))


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RequestLogEntry:
    method: str
    path: str
    status: int


class HubSpotState:
    """One HubSpot portal. Thread-safe: the sandbox server is threaded and tests write from their own thread."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = replace(config) if config else SandboxConfig()  # a copy: tests tweak it per portal
        self.faults = faults or Faults()
        self.clock = clock
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECT_TYPES}
        self.properties: dict[str, dict[str, PropertyDef]] = {}
        self.groups: dict[str, dict[str, dict]] = {}
        for name in OBJECT_TYPES:
            self.properties[name] = {p.name: PropertyDef(**vars(p)) for p in schema.BUILTIN_PROPERTIES[name]}
            self.groups[name] = {
                g: {"name": g, "label": label, "displayOrder": -1, "archived": False}
                for g, label in schema.BUILTIN_GROUPS[name]
            }
        # (from type, from id, to type) -> {to id: {association type ids}}; both directions are stored.
        self.associations: dict[tuple[str, str, str], dict[str, set[int]]] = {}
        self.owners: dict[str, dict] = {}
        # (type, unique property) -> {value: record id}: HubSpot answers uniqueness and upserts without a scan.
        self._unique_index: dict[tuple[str, str], dict[str, str]] = {}
        self._next_id = {name: o.id_base for name, o in OBJECT_TYPES.items()}
        self._next_owner_id = 70_000_001
        self.request_log: list[RequestLogEntry] = []
        self.ten_secondly = (
            RollingWindow(self.config.rate_limit_max, self.config.rate_limit_interval_ms / 1000)
            if self.config.rate_limit_max
            else None
        )
        self.search_secondly = (
            RollingWindow(self.config.search_requests_per_second, 1.0)
            if self.config.search_requests_per_second
            else None
        )

    # ----------------------------------------------------------------------------------------------- bookkeeping

    def now(self) -> datetime:
        return self.clock()

    def api_calls(self, prefix: str = "/crm/") -> int:
        """Requests served under `prefix` (all outcomes), for comparing against what a client thinks it spent."""
        return sum(1 for e in self.request_log if e.path.startswith(prefix))

    def new_id(self, object_type: str) -> str:
        with self.lock:
            value = self._next_id[object_type]
            self._next_id[object_type] = value + 1
            return str(value)

    def live(self, object_type: str) -> list[Record]:
        return [r for r in self.records[object_type].values() if not r.archived]

    def get(self, object_type: str, record_id: str, archived: bool = False) -> Record | None:
        record = self.records[object_type].get(str(record_id))
        if record is None or record.archived != archived:
            return None
        return record

    def prop(self, object_type: str, name: str) -> PropertyDef | None:
        definition = self.properties[object_type].get(name)
        return definition if definition and not definition.archived else None

    def find_by_property(self, object_type: str, name: str, value: str) -> Record | None:
        needle = _unique_key(name, value)
        definition = self.prop(object_type, name)
        if definition is not None and definition.unique:
            found = self.records[object_type].get(self._unique_index.get((object_type, name), {}).get(needle, ""))
            return found if found is not None and not found.archived else None
        for record in self.live(object_type):
            stored = record.properties.get(name)
            if stored is not None and (stored.lower() if name == "email" else stored) == needle:
                return record
        return None

    # ------------------------------------------------------------------------------------------------ owners

    def add_owner(self, email: str, first_name: str = "", last_name: str = "") -> dict:
        with self.lock:
            for owner in self.owners.values():
                if owner["email"].lower() == email.lower():
                    return owner
            owner_id = str(self._next_owner_id)
            self._next_owner_id += 1
            stamp = iso_ms(self.now())
            owner = {
                "id": owner_id,
                "email": email,
                "firstName": first_name,
                "lastName": last_name,
                "userId": int(owner_id) - 60_000_000,
                "userIdIncludingInactive": int(owner_id) - 60_000_000,
                "type": "PERSON",
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
                "teams": [],
            }
            self.owners[owner_id] = owner
            return owner

    # ------------------------------------------------------------------------------------------- validation

    def normalize(self, object_type: str, values: dict, *, creating: bool, system: bool = False) -> dict:
        """Validate property values the way HubSpot does and return them in stored (wire) form.

        `system` skips the read-only check, for the sandbox's own bookkeeping and for seeding.
        """
        out: dict[str, str | None] = {}
        errors: list[dict] = []
        for name, raw in values.items():
            definition = self.prop(object_type, name)
            if definition is None:
                errors.append(_property_error(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
                continue
            if definition.read_only and not system:
                message = f"{name} is a read only property; its value cannot be set."
                errors.append(_property_error(name, message, "READ_ONLY_VALUE"))
                continue
            value = as_wire(raw)
            if value is None:
                out[name] = None
                continue
            normalized, problem = self._normalize_value(definition, value)
            if problem:
                errors.append(_property_error(name, problem[0], problem[1]))
            else:
                out[name] = normalized
        if creating:
            for name in OBJECT_TYPES[object_type].required_on_create:
                if out.get(name) is None and not system:
                    errors.append(_property_error(name, f"{name} is required", "REQUIRED_PROPERTY"))
        if errors:
            raise invalid_properties(errors)
        return out

    def _normalize_value(self, definition: PropertyDef, value: str) -> tuple[str | None, tuple[str, str] | None]:
        kind = definition.type
        if kind == "number":
            number = parse_number(value)
            if number is None:
                return None, (f"{value} was not a valid number.", "INVALID_NUMBER")
            return value.strip(), None
        if kind == "bool":
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                return None, (f"{value} was not a valid boolean (true/false).", "INVALID_BOOLEAN")
            return lowered, None
        if kind == "date":
            day = parse_date(value)
            if day is None:
                message = f"{value} is not a valid date; use YYYY-MM-DD or midnight UTC in milliseconds."
                return None, (message, "INVALID_DATE")
            return day.isoformat(), None
        if kind == "datetime":
            moment = parse_datetime(value)
            if moment is None:
                return None, (f"{value} is not a valid datetime.", "INVALID_DATETIME")
            return iso_ms(moment), None
        if kind == "enumeration":
            if definition.name == "hubspot_owner_id":
                if value not in self.owners:
                    return None, (f"{value} is not a valid owner id", "INVALID_OWNER_ID")
                return value, None
            allowed = {o["value"] for o in definition.options}
            chosen = value.split(";") if definition.field_type == "checkbox" else [value]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                message = f"{bad[0]} was not one of the allowed options: {sorted(allowed)}"
                return None, (message, "INVALID_OPTION")
            return value, None
        return value, None

    def _check_unique(self, object_type: str, values: dict, own_id: str | None) -> None:
        for name, value in values.items():
            definition = self.prop(object_type, name)
            if value is None or definition is None or not definition.unique:
                continue
            existing = self.find_by_property(object_type, name, value)
            if existing is not None and existing.id != own_id:
                if object_type == "contacts" and name == "email":
                    message = f"Contact already exists. Existing ID: {existing.id}"
                else:
                    message = (
                        f"A {OBJECT_TYPES[object_type].singular} with the unique value {value!r} for property "
                        f"{name!r} already exists. Existing ID: {existing.id}"
                    )
                raise InputError(message, category="CONFLICT", status=409, context={"id": [existing.id]})

    # ------------------------------------------------------------------------------------------------ writes

    def create(
        self,
        object_type: str,
        values: dict,
        associations: Iterable[dict] = (),
        *,
        system: bool = False,
        modified_at: datetime | None = None,
    ) -> Record:
        """POST /crm/v3/objects/{type}: validate, store, associate (`associations` in the v3 create shape)."""
        with self.lock:
            props = self.normalize(object_type, values, creating=True, system=system)
            self._check_unique(object_type, props, None)
            links = [self._parse_create_association(object_type, a) for a in associations]
            now = self.now()
            meta = OBJECT_TYPES[object_type]
            created = parse_datetime(props[meta.created_property]) if props.get(meta.created_property) else None
            created = created or now
            record = Record(self.new_id(object_type), {}, created, now)
            self.records[object_type][record.id] = record
            record.properties.update({k: v for k, v in props.items() if v is not None})
            record.properties[meta.created_property] = iso_ms(created)
            for to_type, to_id, type_id in links:
                self._apply_association(object_type, record.id, to_type, to_id, type_id)
            self._after_write(object_type, record, modified_at or now, touched=set(props))
            self._reindex(object_type, record, {})
            return record

    def update(self, object_type: str, record_id: str, values: dict, *, system: bool = False) -> Record:
        """PATCH /crm/v3/objects/{type}/{id}: missing or archived records are 404 OBJECT_NOT_FOUND."""
        with self.lock:
            record = self.get(object_type, record_id)
            if record is None:
                raise InputError(
                    "resource not found", category="OBJECT_NOT_FOUND", status=404, context={"id": [record_id]}
                )
            props = self.normalize(object_type, values, creating=False, system=system)
            self._check_unique(object_type, props, record.id)
            before = self._unique_values(object_type, record)
            for name, value in props.items():
                if value is None:
                    record.properties.pop(name, None)
                else:
                    record.properties[name] = value
            self._after_write(object_type, record, self.now(), touched=set(props))
            self._reindex(object_type, record, before)
            return record

    def archive(self, object_type: str, record_id: str) -> bool:
        """DELETE: move the record to the recycle bin; it stays readable with `archived=true`."""
        with self.lock:
            record = self.get(object_type, record_id)
            if record is None:
                return False
            now = self.now()
            before = self._unique_values(object_type, record)
            record.archived = True
            record.archived_at = now
            self._stamp(object_type, record, now)
            self._reindex(object_type, record, before)  # an archived record frees its unique values
            return True

    def _unique_values(self, object_type: str, record: Record) -> dict[str, str | None]:
        return {
            name: record.properties.get(name)
            for name, definition in self.properties[object_type].items()
            if definition.unique and not record.archived
        }

    def _reindex(self, object_type: str, record: Record, before: dict[str, str | None]) -> None:
        after = self._unique_values(object_type, record)
        for name in set(before) | set(after):
            old, new = before.get(name), after.get(name)
            if old == new:
                continue
            index = self._unique_index.setdefault((object_type, name), {})
            if old is not None and index.get(_unique_key(name, old)) == record.id:
                del index[_unique_key(name, old)]
            if new is not None:
                index[_unique_key(name, new)] = record.id

    def _after_write(self, object_type: str, record: Record, when: datetime, touched: set[str]) -> None:
        props = record.properties
        props["hs_object_id"] = record.id
        if object_type == "contacts":
            full = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
            props["hs_full_name_or_email"] = full or props.get("email") or ""
            if "associatedcompanyid" in touched:
                self._set_primary_company(record, props.get("associatedcompanyid"))
        if object_type == "tickets":
            if props.get("hs_pipeline_stage") == "4" and not props.get("closed_date"):
                props["closed_date"] = iso_ms(when)
            closed = parse_datetime(props["closed_date"]) if props.get("closed_date") else None
            if closed is not None:
                props["time_to_close"] = str(max(0, to_ms(closed) - to_ms(record.created_at)))
            else:
                props.pop("time_to_close", None)
        self._stamp(object_type, record, when)

    def _stamp(self, object_type: str, record: Record, when: datetime) -> None:
        record.updated_at = when
        for name in OBJECT_TYPES[object_type].modified_properties:
            record.properties[name] = iso_ms(when)

    def _set_primary_company(self, contact: Record, company_id: str | None) -> None:
        """Writing associatedcompanyid moves the contact's primary company association, as in HubSpot."""
        unlabeled, primary = schema.ASSOCIATION_TYPES[("contacts", "companies")]
        assert primary is not None
        for other, types in list(self.associations.get(("contacts", contact.id, "companies"), {}).items()):
            if primary in types:
                self._unlink_type("contacts", contact.id, "companies", other, primary)
        if company_id and self.get("companies", company_id):
            self._link("contacts", contact.id, "companies", company_id, unlabeled)
            self._link("contacts", contact.id, "companies", company_id, primary)

    # ---------------------------------------------------------------------------------------------- associations

    def _parse_create_association(self, object_type: str, spec: dict) -> tuple[str, str, int]:
        to_id = str((spec.get("to") or {}).get("id", ""))
        types = spec.get("types") or []
        if not to_id or not types:
            raise InputError("Each association needs `to.id` and at least one type")
        type_id = int(types[0].get("associationTypeId", 0))
        to_type = self.type_for_association(object_type, type_id)
        if to_type is None:
            raise InputError(
                f"{type_id} is not a valid association type id for {object_type}", category="VALIDATION_ERROR"
            )
        if self.get(to_type, to_id) is None:
            raise InputError(f"No {OBJECT_TYPES[to_type].singular} with id {to_id} exists", category="VALIDATION_ERROR")
        return to_type, to_id, type_id

    def type_for_association(self, from_type: str, type_id: int) -> str | None:
        for (src, dst), (unlabeled, primary) in schema.ASSOCIATION_TYPES.items():
            if src == from_type and type_id in (unlabeled, primary):
                return dst
        return None

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None = None) -> None:
        """Link two records (both directions); no type id means the unlabeled default association."""
        if (from_type, to_type) not in schema.ASSOCIATION_TYPES:
            raise InputError(f"Associations from {from_type} to {to_type} are not supported")
        unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
        if type_id is not None and type_id not in (unlabeled, primary):
            raise InputError(f"{type_id} is not a valid association type between {from_type} and {to_type}")
        with self.lock:
            for object_type, object_id in ((from_type, from_id), (to_type, to_id)):
                if self.get(object_type, object_id) is None:
                    raise InputError(
                        f"No {OBJECT_TYPES[object_type].singular} with id {object_id} exists",
                        category="OBJECT_NOT_FOUND",
                        status=404,
                    )
            self._apply_association(from_type, from_id, to_type, to_id, type_id if type_id is not None else unlabeled)

    def _apply_association(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        """Store a validated association; a primary company of a contact also moves its associatedcompanyid."""
        unlabeled, primary = schema.ASSOCIATION_TYPES[(from_type, to_type)]
        self._link(from_type, from_id, to_type, to_id, unlabeled)
        if primary is None or type_id != primary:
            return
        pair = {from_type: from_id, to_type: to_id}
        if set(pair) == {"contacts", "companies"}:
            contact = self.records["contacts"][pair["contacts"]]
            contact.properties["associatedcompanyid"] = pair["companies"]
            self._set_primary_company(contact, pair["companies"])
            self._stamp("contacts", contact, self.now())
        else:
            self._link(from_type, from_id, to_type, to_id, primary)

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        back = schema.inverse_type_id(from_type, to_type, type_id)
        unlabeled, _ = schema.ASSOCIATION_TYPES[(from_type, to_type)]
        back_unlabeled, _ = schema.ASSOCIATION_TYPES[(to_type, from_type)]
        forward = self.associations.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, set())
        forward.update({unlabeled, type_id})
        backward = self.associations.setdefault((to_type, to_id, from_type), {}).setdefault(from_id, set())
        backward.add(back_unlabeled)
        if back is not None:
            backward.add(back)

    def _unlink_type(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        forward = self.associations.get((from_type, from_id, to_type), {}).get(to_id)
        if forward:
            forward.discard(type_id)
        back = schema.inverse_type_id(from_type, to_type, type_id)
        backward = self.associations.get((to_type, to_id, from_type), {}).get(from_id)
        if backward and back is not None:
            backward.discard(back)

    def unassociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Remove every association type between the two records (what DELETE .../associations/... does)."""
        with self.lock:
            self.associations.get((from_type, from_id, to_type), {}).pop(to_id, None)
            self.associations.get((to_type, to_id, from_type), {}).pop(from_id, None)
            if from_type == "contacts" and to_type == "companies":
                contact = self.records["contacts"].get(from_id)
                if contact and contact.properties.get("associatedcompanyid") == to_id:
                    contact.properties.pop("associatedcompanyid", None)
                    self._stamp("contacts", contact, self.now())
            if to_type == "contacts" and from_type == "companies":
                contact = self.records["contacts"].get(to_id)
                if contact and contact.properties.get("associatedcompanyid") == from_id:
                    contact.properties.pop("associatedcompanyid", None)
                    self._stamp("contacts", contact, self.now())

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, set[int]]:
        """Live associated records and their type ids (associations to archived records are hidden)."""
        linked = self.associations.get((from_type, from_id, to_type), {})
        return {
            to_id: set(types)
            for to_id, types in sorted(linked.items(), key=lambda kv: int(kv[0]))
            if types and self.get(to_type, to_id) is not None
        }

    # --------------------------------------------------------------------------------------------- properties

    def create_property(self, object_type: str, body: dict) -> PropertyDef:
        """POST /crm/v3/properties/{type}."""
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise InputError(f"Missing required field(s): {', '.join(missing)}")
        name = str(body["name"])
        if not _valid_property_name(name):
            raise InputError(f"Property name {name!r} must start with a letter and use lower case letters, digits, _")
        kind, field_type = body["type"], body["fieldType"]
        if kind not in _FIELD_TYPES:
            raise InputError(f"{kind!r} is not a valid property type")
        if field_type not in _FIELD_TYPES[kind]:
            raise InputError(f"fieldType {field_type!r} is not valid for a property of type {kind!r}")
        with self.lock:
            existing = self.properties[object_type].get(name)
            if existing is not None and not existing.archived:
                raise InputError(
                    f"Property named '{name}' already exists.", category="OBJECT_ALREADY_EXISTS", status=409
                )
            group = self.groups[object_type].get(body["groupName"])
            if group is None or group["archived"]:
                raise InputError(f"Property group {body['groupName']!r} does not exist")
            stamp = iso_ms(self.now())
            definition = PropertyDef(
                name=name,
                label=str(body["label"]),
                type=kind,
                field_type=field_type,
                group=body["groupName"],
                options=_options(body.get("options") or []),
                hubspot_defined=False,
                unique=bool(body.get("hasUniqueValue", False)),
                description=str(body.get("description") or ""),
                display_order=int(body.get("displayOrder", -1)),
                created_at=stamp,
                updated_at=stamp,
            )
            self.properties[object_type][name] = definition
            return definition

    def update_property(self, object_type: str, name: str, body: dict) -> PropertyDef:
        with self.lock:
            definition = self.prop(object_type, name)
            if definition is None:
                raise InputError(f"Unable to find property {name}", category="OBJECT_NOT_FOUND", status=404)
            if definition.hubspot_defined and ("type" in body or "fieldType" in body):
                raise InputError(f"The type of HubSpot defined property {name} cannot be changed")
            if "groupName" in body and body["groupName"] not in self.groups[object_type]:
                raise InputError(f"Property group {body['groupName']!r} does not exist")
            kind = body.get("type", definition.type)
            field_type = body.get("fieldType", definition.field_type)
            if kind not in _FIELD_TYPES or field_type not in _FIELD_TYPES[kind]:
                raise InputError(f"fieldType {field_type!r} is not valid for a property of type {kind!r}")
            definition.type, definition.field_type = kind, field_type
            for key, attr in (("label", "label"), ("description", "description"), ("groupName", "group")):
                if key in body:
                    setattr(definition, attr, str(body[key]))
            if "displayOrder" in body:
                definition.display_order = int(body["displayOrder"])
            if "options" in body:
                definition.options = _options(body["options"] or [])
            definition.updated_at = iso_ms(self.now())
            return definition

    def archive_property(self, object_type: str, name: str) -> None:
        with self.lock:
            definition = self.prop(object_type, name)
            if definition is None:
                raise InputError(f"Unable to find property {name}", category="OBJECT_NOT_FOUND", status=404)
            if definition.hubspot_defined:
                raise InputError(f"HubSpot defined property {name} cannot be archived")
            definition.archived = True

    def create_group(self, object_type: str, body: dict) -> dict:
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise InputError("Property groups need a name and a label")
        if not _valid_property_name(str(name)):
            raise InputError(f"Group name {name!r} must start with a letter and use lower case letters, digits, _")
        with self.lock:
            existing = self.groups[object_type].get(name)
            if existing is not None and not existing["archived"]:
                raise InputError(
                    f"Property group named '{name}' already exists.", category="OBJECT_ALREADY_EXISTS", status=409
                )
            group = {
                "name": name,
                "label": str(label),
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self.groups[object_type][name] = group
            return group


_FIELD_TYPES: dict[str, set[str]] = {
    "string": {"text", "textarea", "file", "phonenumber", "html"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
}


def _unique_key(name: str, value: str) -> str:
    """HubSpot compares contact emails without case; other unique values exactly."""
    return value.lower() if name == "email" else value


def _valid_property_name(name: str) -> bool:
    return (
        bool(name)
        and name[0].isalpha()
        and name[0].islower()
        and all(c.islower() or c.isdigit() or c == "_" for c in name)
    )


def _options(raw: list[dict]) -> list[dict]:
    return [
        {
            "label": str(o.get("label", o.get("value", ""))),
            "value": str(o.get("value", "")),
            "displayOrder": int(o.get("displayOrder", i)),
            "hidden": bool(o.get("hidden", False)),
            **({"description": o["description"]} if o.get("description") else {}),
        }
        for i, o in enumerate(raw)
    ]


@dataclass
class BatchOutcome:
    """Per-input results and errors of a batch endpoint; 207 when any input failed."""

    results: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
