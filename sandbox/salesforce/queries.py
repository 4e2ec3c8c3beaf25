"""SOQL in the sandbox org: running a query over the records, rendering rows as REST does (parent fields nested
under their relationship), and the server-side cursors behind `nextRecordsUrl`. Mixed into `SalesforceOrg`, whose
lock, schema, records and cursors it uses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce import soql, soql_match
from sandbox.salesforce.ids import ApiError, json_value, make_id, to_id18
from sandbox.salesforce.sobjects import ObjectDef


@dataclass
class Cursor:
    """A query's result, snapshotted when the query ran, so paging never shows a record twice or skips one.

    Rows are the record dicts themselves: the org never mutates a stored record, it replaces it, so holding
    references is a snapshot without copying, and rows are rendered to JSON only when their page is fetched.
    """

    sobject: ObjectDef
    paths: list[soql.FieldPath]
    rows: list[dict[str, Any]]
    batch_size: int
    endpoint: str  # query or queryAll


class Queries:
    def _lookup(self, record_id: Any) -> dict[str, Any] | None:
        if not isinstance(record_id, str):
            return None
        obj = self.object_for_id(record_id)
        return self.records[obj].get(to_id18(record_id)) if obj else None

    def _get_path(self, record: dict[str, Any], path: soql.FieldPath) -> Any:
        if path.relationship is None:
            return record.get(path.target.name)
        parent = self._lookup(record.get(path.relationship.name))
        return None if parent is None else parent.get(path.target.name)

    def record_json(
        self, obj: ObjectDef, record: dict[str, Any], paths: list[soql.FieldPath] | None, version: str
    ) -> dict[str, Any]:
        """A record as REST returns it: `attributes`, then the fields asked for (all fields when None)."""
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record['Id']}"}
        }
        if paths is None:
            for f in obj.fields.values():
                out[f.name] = json_value(f, record.get(f.name))
            return out
        for path in paths:
            if path.relationship is None:
                out[path.names[0]] = json_value(path.target, record.get(path.target.name))
                continue
            parent = self._lookup(record.get(path.relationship.name))
            if parent is None:
                out.setdefault(path.names[0], None)
                continue
            parent_type = self.object_for_id(parent["Id"]) or path.relationship.reference_to[0]
            nested = out.get(path.names[0]) or {
                "attributes": {
                    "type": parent_type,
                    "url": f"/services/data/v{version}/sobjects/{parent_type}/{parent['Id']}",
                }
            }
            nested[path.names[1]] = json_value(path.target, parent.get(path.target.name))
            out[path.names[0]] = nested
        return out

    # -- queries --------------------------------------------------------------------------------------------
    def query(self, text: str, *, include_deleted: bool, version: str, batch_size: int | None = None) -> dict:
        """Run SOQL and answer the first page; further pages wait in a cursor behind `nextRecordsUrl`."""
        with self._lock:
            try:
                query = soql.parse(text, self.schema)
            except soql.SoqlError as error:
                raise ApiError(400, error.code, error.message) from error
            rows = [
                r
                for r in self.records[query.sobject.name].values()
                if (include_deleted or not r["IsDeleted"]) and soql_match.matches(query.where, r, self._get_path)
            ]
            if query.order:
                soql_match.sort_records(rows, query.order, self._get_path)
            rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            if query.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            size = min(batch_size or self.batch_size, self.batch_size)
            endpoint = "queryAll" if include_deleted else "query"
            return self._page(Cursor(query.sobject, query.fields, rows, size, endpoint), None, 0, version)

    def query_more(self, locator: str, offset: int, version: str) -> dict:
        with self._lock:
            cursor = self._cursors.get(locator)
            if cursor is None or offset > len(cursor.rows) or offset < 0:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            self._cursors.move_to_end(locator)
            return self._page(cursor, locator, offset, version)

    def _page(self, cursor: Cursor, locator: str | None, offset: int, version: str) -> dict:
        end = offset + cursor.batch_size
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not page["done"]:
            if locator is None:
                locator = make_id("01g", secrets.randbelow(62**9))
                self._cursors[locator] = cursor
                while len(self._cursors) > self.max_open_cursors:
                    self._cursors.popitem(last=False)
            page["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.endpoint}/{locator}-{end}"
        elif locator is not None:
            self._cursors.pop(locator, None)
        page["records"] = [self.record_json(cursor.sobject, r, cursor.paths, version) for r in cursor.rows[offset:end]]
        return page
