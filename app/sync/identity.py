"""Identity resolution: which account a vendor record is.

A company is joined across vendors by ExternalId (vendor, object, id) first, then the account key the CRM holds,
then the normalized domain; a new company becomes account `<vendor>-<id>`. An account whose last vendor record
is deleted gets status "deleted" (its history stays, a restored record revives it). A null from one vendor never
erases what another vendor said about the same account. Contacts, tickets and deals resolve to the account of
the company they name (split_resolved), and are linked to it so a webhook naming one finds it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, delete, func, select, update

from app.store.bulk import upsert
from app.store.load import load_accounts
from app.store.models import (
    Account,
    ExternalId,
    RecordLink,
)
from app.sync.common import _chunks, _utcnow
from app.sync.log import ObjectLog
from connectors.mapping import (
    MappedBatch,
    Mapping,
)

Bad = list[tuple[dict, str, str | None]]


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _resolve_refs(
    conn: Connection, vendor: str, account_object: str, refs: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """Vendor company id → (account id, account key) through ExternalId."""
    refs = sorted({r for r in refs if r})
    out: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(refs):
        rows = conn.execute(
            select(ExternalId.external_id, Account.id, Account.key)
            .join(Account, Account.id == ExternalId.account_id)
            .where(
                ExternalId.vendor == vendor,
                ExternalId.object == account_object,
                ExternalId.external_id.in_(chunk),
            )
        )
        out.update({ext: (aid, key) for ext, aid, key in rows})
    return out


def _unresolved_reason(mapping: Mapping, ref: str | None) -> str:
    if not ref:
        return f"no company: source field '{mapping.account}' is empty"
    return (
        f"company {ref} ({mapping.vendor} {mapping.account_object}) is not in the store "
        "(not synced yet, deleted, or quarantined)"
    )


def split_resolved(conn: Connection, batch: MappedBatch) -> tuple[pd.DataFrame, dict[str, tuple[int, str]], Bad]:
    """Keep the rows whose company resolves; the rest become quarantine entries with the reason."""
    mapping, frame = batch.mapping, batch.frame
    if frame.empty:
        return frame, {}, []
    assert mapping.account_object is not None
    resolved = _resolve_refs(conn, mapping.vendor, mapping.account_object, frame["account_ref"].dropna())
    ok = frame["account_ref"].map(lambda r: r in resolved).astype(bool)
    refused = frame.loc[~ok, ["record_id", "account_ref"]].itertuples(index=False)
    bad = [(batch.raw[rid], _unresolved_reason(mapping, ref), rid) for rid, ref in refused]
    kept = frame[ok].reset_index(drop=True)
    _link_records(conn, mapping, kept, resolved)
    return kept, resolved, bad


def _link_records(conn: Connection, mapping, frame: pd.DataFrame, resolved: dict[str, tuple[int, str]]) -> None:
    """Remember which account every contact, ticket or deal belongs to, so a webhook naming one finds it."""
    records = [
        {"vendor": mapping.vendor, "object": mapping.object, "external_id": rid, "account_id": resolved[ref][0]}
        for rid, ref in zip(frame["record_id"], frame["account_ref"], strict=True)
    ]
    for chunk in _chunks(records):
        upsert(conn, RecordLink.__table__, list(chunk), conflict=["vendor", "object", "external_id"],
               update=["account_id"])  # fmt: skip


# ---- accounts -------------------------------------------------------------------------------------------------------

ACCOUNT_COLUMNS = [c.name for c in Account.__table__.columns]


def load_account_batch(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """Resolve each company to an account (external id, then key, then domain, else new), upsert, link, delete."""
    mapping, frame = batch.mapping, batch.frame.copy()
    obj = mapping.object
    if not frame.empty:
        ids = frame["record_id"].tolist()
        account_of: dict[str, int] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(
                select(ExternalId.external_id, ExternalId.account_id).where(
                    ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.external_id.in_(chunk)
                )
            )
            account_of.update(dict(rows.all()))
        claimed = set(account_of.values())
        # A record without a link matches the account whose key it names (the CRM holds the product's account
        # id), else its own natural key "<vendor>-<id>" (a restored record), else by domain.
        mapped_keys = dict(zip(frame["record_id"], frame["key"], strict=True)) if "key" in frame else {}
        natural = {rid: f"{vendor}-{rid}"[:64] for rid in ids}
        wanted = {rid: mapped_keys.get(rid) or natural[rid] for rid in ids if rid not in account_of}
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(wanted.values()))):
            found.update(dict(conn.execute(select(Account.key, Account.id).where(Account.key.in_(chunk))).all()))
        for rid, key in wanted.items():
            if key in found:
                account_of[rid] = found[key]
                claimed.add(found[key])
        _match_by_domain(conn, vendor, obj, frame, account_of, claimed)
        existing = _existing_accounts(conn, set(account_of.values()))
        frame["key"] = [
            existing[account_of[rid]]["key"] if rid in account_of else wanted[rid] for rid in frame["record_id"]
        ]
        frame = _fill_from_other_vendors(conn, vendor, obj, frame, account_of, existing, mapping)
        columns = ["key", *[c for c in mapping.fields if c in ACCOUNT_COLUMNS and c != "key"]]
        # Two records resolving to one account in one page: the later (newer) one writes it.
        key_to_id = load_accounts(conn, frame[columns].drop_duplicates("key", keep="last"))
        loaded_ids = [key_to_id[k] for k in frame["key"]]
        revive = sorted({aid for aid in loaded_ids if existing.get(aid, {}).get("status") == "deleted"})
        if revive and "status" not in mapping.fields:
            for chunk in _chunks(revive):
                conn.execute(update(Account).where(Account.id.in_(chunk)).values(status="active"))
        links = [
            {"account_id": aid, "vendor": vendor, "object": obj, "external_id": rid}
            for rid, aid in zip(frame["record_id"], loaded_ids, strict=True)
        ]
        upsert(conn, ExternalId.__table__, links, conflict=["vendor", "object", "external_id"], update=["account_id"])
        entry.accounts += len(frame)
    entry.deleted += _delete_accounts(conn, vendor, obj, batch.deleted["record_id"].tolist())
    return []


def _existing_accounts(conn: Connection, account_ids: set[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for chunk in _chunks(sorted(account_ids)):
        for row in conn.execute(select(Account).where(Account.id.in_(chunk))).mappings():
            out[row["id"]] = dict(row)
    return out


def _match_by_domain(
    conn: Connection, vendor: str, obj: str, frame: pd.DataFrame, account_of: dict[str, int], claimed: set[int]
) -> None:
    """Second identity rule: the normalized domain, against accounts no other record of this vendor object owns."""
    if "domain" not in frame:
        return
    wanted = {rid: d for rid, d in zip(frame["record_id"], frame["domain"], strict=True) if rid not in account_of and d}
    if not wanted:
        return
    candidates: dict[str, list[int]] = {}
    for chunk in _chunks(sorted(set(wanted.values()))):
        rows = conn.execute(
            select(func.lower(Account.domain), Account.id)
            .where(func.lower(Account.domain).in_(chunk))
            .order_by(Account.id)
        )
        for domain, aid in rows:
            candidates.setdefault(domain, []).append(aid)
    all_ids = sorted({aid for ids in candidates.values() for aid in ids})
    owned: set[int] = set()
    for chunk in _chunks(all_ids):
        owned.update(
            conn.execute(
                select(ExternalId.account_id).where(
                    ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.account_id.in_(chunk)
                )
            ).scalars()
        )
    for rid, domain in wanted.items():
        for aid in candidates.get(domain, []):
            if aid not in owned and aid not in claimed:
                account_of[rid] = aid
                claimed.add(aid)
                break


def _fill_from_other_vendors(
    conn: Connection,
    vendor: str,
    obj: str,
    frame: pd.DataFrame,
    account_of: dict[str, int],
    existing: dict[int, dict],
    mapping: Mapping,
) -> pd.DataFrame:
    """Where another vendor object also feeds an account, an empty value here keeps the stored one, and so does
    any value of a `fallback` field (one another vendor owns, e.g. the CRM's company name over Intercom's)."""
    shared: set[int] = set()
    for chunk in _chunks(sorted(set(account_of.values()))):
        shared.update(
            conn.execute(
                select(ExternalId.account_id).where(
                    ExternalId.account_id.in_(chunk), (ExternalId.vendor != vendor) | (ExternalId.object != obj)
                )
            ).scalars()
        )
    frame = frame.astype(object)
    columns = [c for c in frame.columns if c in ACCOUNT_COLUMNS and c != "key"]
    fallback = {name for name, spec in mapping.fields.items() if spec.fallback}
    account_ids = [account_of.get(rid) for rid in frame["record_id"]]
    # Column by column on plain lists: a cell read and write through `frame.at` cost ~10 us, ~0.5 s a demo link.
    for column in columns:
        values = frame[column].tolist()
        for i, aid in enumerate(account_ids):
            if aid is None or not (aid in shared or column == "status"):
                continue
            stored = existing[aid].get(column)
            yields = column in fallback and stored is not None and not pd.isna(stored)
            if pd.isna(values[i]) or yields:
                values[i] = stored
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    if "status" in frame:
        frame["status"] = frame["status"].where(frame["status"].notna(), "active")
    return frame


def _delete_accounts(conn: Connection, vendor: str, obj: str, record_ids: list[str]) -> int:
    """Unlink deleted records; an account no vendor record points to any more gets status "deleted"."""
    affected: set[int] = set()
    for chunk in _chunks(sorted(set(record_ids))):
        where = (ExternalId.vendor == vendor, ExternalId.object == obj, ExternalId.external_id.in_(chunk))
        affected.update(conn.execute(select(ExternalId.account_id).where(*where)).scalars())
        conn.execute(delete(ExternalId).where(*where))
    if not affected:
        return 0
    still_linked = set(
        conn.execute(select(ExternalId.account_id).where(ExternalId.account_id.in_(sorted(affected)))).scalars()
    )
    orphans = sorted(affected - still_linked)
    for chunk in _chunks(orphans):
        conn.execute(update(Account).where(Account.id.in_(chunk)).values(status="deleted", updated_at=_utcnow()))
    return len(affected)


def enrich_accounts(conn: Connection, vendor: str, batch: MappedBatch, entry: ObjectLog) -> Bad:
    """An account mapping with `account` (deals → renewal date, say) updates the company it points to."""
    frame, resolved, bad = split_resolved(conn, batch)
    columns = [c for c in batch.mapping.fields if c in ACCOUNT_COLUMNS]
    for row in _records(frame):
        values = {c: row[c] for c in columns if row[c] is not None}
        if values:
            account_id = resolved[row["account_ref"]][0]
            conn.execute(update(Account).where(Account.id == account_id).values(**values, updated_at=_utcnow()))
            entry.accounts += 1
    return bad
