"""Associations between HubSpot records in the sandbox portal: typed links (unlabeled and primary), stored in both
directions, with HubSpot's rules for which types join which objects. Mixed into `HubSpotState`, whose lock,
records and `associations` index it works on."""

from __future__ import annotations

from sandbox.hubspot import schema
from sandbox.hubspot.errors import InputError
from sandbox.hubspot.schema import OBJECT_TYPES


class Associations:
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
