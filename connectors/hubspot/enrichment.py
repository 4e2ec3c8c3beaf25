"""What HubSpot's search and batch reads leave out and a mapping may ask for: the primary company of a record (one
v4 association batch read per up to 1,000 records) and its owner (the owner list, read once per source). Mixed into
`HubSpotSource`, whose client and settings it uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)

if TYPE_CHECKING:  # the mapping package loads pandas, which the web process must not import
    from connectors.mapping import Mapping as FieldMapping

RECORD_FIELDS = frozenset({"id", "createdAt", "updatedAt", "archived", "archivedAt"})
OWNER_PAGE_SIZE = 100


@dataclass
class ObjectNeeds:
    """What a pull of one object must fetch so its mappings find every source path they name."""

    properties: set[str] = field(default_factory=set)
    company: bool = False  # `associations.companies`
    owner: bool = False  # `owner.*`


def needs_from_mappings(mappings: Iterable[FieldMapping]) -> dict[str, ObjectNeeds]:
    """Per HubSpot object, the properties and extras to request so every given (validated) pull mapping finds the
    paths it reads (`source_paths()`, `when` conditions included)."""
    out: dict[str, ObjectNeeds] = {}
    for mapping in mappings:
        if mapping.vendor != "hubspot" or mapping.direction != "pull":
            continue
        needs = out.setdefault(mapping.object, ObjectNeeds())
        for _, path, _ in mapping.source_paths():
            head, _, rest = path.partition(".")
            if head == "associations":
                needs.company = needs.company or rest.split(".")[0] == "companies"
            elif head == "owner":
                needs.owner = True
                needs.properties.add("hubspot_owner_id")
            elif head not in RECORD_FIELDS:
                needs.properties.add(head)
    return out


class Enrichment:
    def _enrich(self, obj: str, records: list[dict], needs: ObjectNeeds, have_companies: bool) -> list[dict]:
        if needs.company and not have_companies:
            companies = self._primary_companies(obj, [r["id"] for r in records])
            for record in records:
                record["associations"] = {"companies": companies.get(record["id"])}
        if needs.owner:
            owners = self._owner_index()
            for record in records:
                owner_id = record.get("hubspot_owner_id")
                record["owner"] = owners.get(str(owner_id)) if owner_id else None
        return records

    def _primary_companies(self, obj: str, ids: Sequence[str]) -> dict[str, str]:
        """One v4 batch read per `association_batch_size` ids: record id -> primary (else first) company id."""
        batch = self.client.api("crm.associations.v4.batch_api")
        out: dict[str, str] = {}
        for start in range(0, len(ids), self.association_batch_size):
            chunk = ids[start : start + self.association_batch_size]
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in chunk]
            )
            response = self.client.call(batch.get_page, obj, "companies", body)
            for result in response.results or []:
                targets = result.to or []
                primary = [
                    t.to_object_id
                    for t in targets
                    if any((a.label or "").lower() == "primary" for a in (t.association_types or []))
                ]
                chosen = primary[0] if primary else (targets[0].to_object_id if targets else None)
                if chosen is not None:
                    out[str(result._from.id)] = str(chosen)
        return out

    def _owner_index(self) -> dict[str, dict]:
        """Owners once per source (active and deactivated), so records can carry their owner's email."""
        if self._owners is None:
            owners_api = self.client.api("crm.owners.owners_api")
            index: dict[str, dict] = {}
            for archived in (False, True):
                after: str | None = None
                while True:
                    kwargs: dict[str, Any] = {"limit": OWNER_PAGE_SIZE, "archived": archived}
                    if after:
                        kwargs["after"] = after
                    page = self.client.call(owners_api.get_page, **kwargs)
                    for owner in page.results or []:
                        index[str(owner.id)] = {
                            "id": str(owner.id),
                            "email": owner.email,
                            "firstName": owner.first_name,
                            "lastName": owner.last_name,
                        }
                    if page.paging is None or page.paging.next is None:
                        break
                    after = page.paging.next.after
            self._owners = index
        return self._owners
