"""The portal behind the HubSpot sandbox: records, properties, associations and owners, held in memory.

Everything the HTTP layer does goes through here, so the rules HubSpot enforces on writes (properties must exist,
values must fit their type, read-only properties refuse values, unique values stay unique) and the bookkeeping it
does on every write (hs_lastmodifieddate, calculated properties, primary-company sync) hold equally for the API, the
seeding code and tests that poke the state directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sandbox.faults import Faults
from sandbox.hubspot import schema
from sandbox.hubspot.associations import Associations
from sandbox.hubspot.errors import InputError, invalid_properties, property_error
from sandbox.hubspot.limits import RollingWindow
from sandbox.hubspot.properties import PropertyAdmin
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


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RequestLogEntry:
    method: str
    path: str
    status: int


class HubSpotState(Associations, PropertyAdmin):
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
                errors.append(property_error(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
                continue
            if definition.read_only and not system:
                message = f"{name} is a read only property; its value cannot be set."
                errors.append(property_error(name, message, "READ_ONLY_VALUE"))
                continue
            value = as_wire(raw)
            if value is None:
                out[name] = None
                continue
            normalized, problem = self._normalize_value(definition, value)
            if problem:
                errors.append(property_error(name, problem[0], problem[1]))
            else:
                out[name] = normalized
        if creating:
            for name in OBJECT_TYPES[object_type].required_on_create:
                if out.get(name) is None and not system:
                    errors.append(property_error(name, f"{name} is required", "REQUIRED_PROPERTY"))
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


def _unique_key(name: str, value: str) -> str:
    """HubSpot compares contact emails without case; other unique values exactly."""
    return value.lower() if name == "email" else value


@dataclass
class BatchOutcome:
    """Per-input results and errors of a batch endpoint; 207 when any input failed."""

    results: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
