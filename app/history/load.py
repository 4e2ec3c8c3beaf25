"""`cse import` of product history: the event log and the subscription terms go into the store itself.

The event log is read once, in chunks (pandas `read_csv(chunksize=...)`), however many event types it holds: each
chunk's types are mapped to canonical kinds with one vectorized lookup, aggregated to one row per account, day,
kind and feature, and staged into `activity_events` (COPY on PostgreSQL, executemany on SQLite, app/store/bulk.py).
A chunk's rows have ids made of the import name, the chunk number and the aggregate's key, so reading the same
file again inserts nothing; a checkpoint after each committed chunk lets an interrupted import resume where it
stopped, and a changed file (size, mtime or chunk size) replaces the import's earlier events.

Subscription terms are upserted by (import, term id); churn dates, upsells, downsells and seat changes are derived
from them (engine/subscriptions.py) and written as the account's dates and as plan/seat change events, so the
daily rollups, the monthly panel and the labels of app/ml/dataset.py work on imported history as on CRM data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, update

from app.history.mapping import EventsSpec, HistorySpec, SubscriptionsSpec
from app.store.bulk import staged_insert, upsert
from app.store.load import EVENT_FIELDS, _ensure_features, account_ids_by_key, refresh_rollups
from app.store.models import Account, ActivityEvent, SubscriptionTerm
from engine.canonical import EventKind
from engine.subscriptions import churn_dates, mrr_changes, seat_changes

SOURCE = "import"  # activity_events.source of imported rows; their external ids start with "<import name>:"
CHECKPOINT_FILE = "checkpoint.json"
USER_DAY_KIND = EventKind.LOGIN  # with a user column, each user active on a day counts as one login that day


@dataclass
class HistoryResult:
    events_read: int = 0
    event_rows: int = 0
    chunks: int = 0
    chunks_skipped: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)
    terms: int = 0
    accounts: int = 0
    churned: int = 0
    plan_changes: int = 0
    seat_changes: int = 0
    data_end: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _prefix(name: str) -> str:
    return f"{name}:"


def imported_rows(name: str):
    """The activity rows an import of this name wrote."""
    return and_(ActivityEvent.source == SOURCE, ActivityEvent.external_id.startswith(_prefix(name), autoescape=True))


def ensure_accounts(conn: Connection, keys, known: dict[str, int]) -> dict[str, int]:
    """Create accounts for keys not seen yet (key and name = the export's account id); key -> id for all."""
    new = [k for k in pd.unique(np.asarray(keys, dtype=object)) if k not in known]
    if new:
        now = datetime.now()
        upsert(conn, Account.__table__, [{"key": k, "name": k, "status": "active", "updated_at": now} for k in new],
               conflict=["key"])  # fmt: skip
        known = account_ids_by_key(conn)
    return known


class _Checkpoint:
    """Chunks committed so far for one file, so a re-run resumes after them; a different file starts over."""

    def __init__(self, folder: Path, path: Path, chunk_rows: int) -> None:
        stat = path.stat()
        self.file = folder / CHECKPOINT_FILE
        self.fingerprint = {"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime, "chunk_rows": chunk_rows}
        saved = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.same_file = saved.get("fingerprint") == self.fingerprint
        self.done = int(saved.get("chunks_done", 0)) if self.same_file else 0
        self.complete = bool(saved.get("complete")) and self.same_file

    def save(self, chunks_done: int, complete: bool = False) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "chunks_done": chunks_done, "complete": complete}))
        os.replace(tmp, self.file)


def _type_lookup(spec: EventsSpec, names: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Raw type value -> kind and -> feature key (the type's name unless the mapping names a feature)."""
    types = spec.event_types()
    raw_of = {name: raw for raw, name in names.items()} if names else {t: t for t in types}
    kinds, features = {}, {}
    for label, event_type in types.items():
        raw = raw_of.get(label, label)
        kinds[raw] = event_type.kind.value
        features[raw] = event_type.feature or label
    return kinds, features


def aggregate_chunk(chunk: pd.DataFrame, spec: EventsSpec, kinds: dict[str, str], features: dict[str, str],
                    unmapped: dict[str, int]) -> pd.DataFrame:  # fmt: skip
    """One chunk of the log as (account_key, day, kind, feature, count) rows, every event type in one lookup."""
    raw = chunk[spec.type].astype(str)
    kind = raw.map(kinds)
    mapped = kind.notna().to_numpy()
    if not mapped.all():
        for value, n in raw[~mapped].value_counts().items():
            unmapped[str(value)] = unmapped.get(str(value), 0) + int(n)
    day = pd.to_datetime(chunk.loc[mapped, spec.time], errors="coerce").dt.normalize()
    rows = pd.DataFrame({"account_key": chunk.loc[mapped, spec.account].astype(str), "day": day,
                         "kind": kind[mapped], "feature": raw[mapped].map(features)})  # fmt: skip
    rows = rows.dropna(subset=["day", "account_key"])
    out = rows.groupby(["account_key", "day", "kind", "feature"], sort=False, observed=True).size()
    out = out.rename("count").reset_index()
    if spec.user:
        users = chunk.loc[mapped, [spec.account, spec.user]].assign(day=day).dropna()
        per_day = users.groupby([spec.account, "day"], sort=False)[spec.user].nunique().rename("count").reset_index()
        per_day = per_day.rename(columns={spec.account: "account_key"})
        per_day["account_key"] = per_day["account_key"].astype(str)
        out = pd.concat([out, per_day.assign(kind=USER_DAY_KIND.value, feature="active_users")], ignore_index=True)
    return out


def _event_frame(rows: pd.DataFrame, ids: dict[str, int], name: str, chunk: int) -> pd.DataFrame:
    day_text = rows["day"].dt.strftime("%Y%m%d")
    external = (_prefix(name) + str(chunk) + ":" + rows["account_key"] + ":" + day_text + ":" + rows["kind"] + ":"
                + rows["feature"])  # fmt: skip
    return pd.DataFrame(
        {
            "account_id": rows["account_key"].map(ids).astype("int64"),
            "contact_id": pd.Series(pd.NA, index=rows.index, dtype="Int64"),
            "occurred_at": rows["day"],
            "kind": rows["kind"],
            "feature": rows["feature"].str.slice(0, 64),
            "count": rows["count"].astype("int64"),
            "value": np.nan,
            "source": SOURCE,
            "external_id": external.str.slice(0, 128),
        }
    )


Progress = Callable[[str], None] | None


def load_events(engine: Engine, spec: EventsSpec, path: Path, sep: str, names: dict[str, str] | None, name: str,
                folder: Path, result: HistoryResult, progress: Progress = None) -> None:  # fmt: skip
    """Stream the log into activity_events, one transaction and checkpoint per chunk (see module doc)."""
    checkpoint = _Checkpoint(folder, path, spec.chunk_rows)
    with engine.connect() as conn:
        if (
            checkpoint.done
            and conn.execute(select(ActivityEvent.id).where(imported_rows(name)).limit(1)).first() is None
        ):
            checkpoint.done, checkpoint.complete = 0, False  # another store than the checkpoint's: read it all
    if not checkpoint.same_file:
        with engine.begin() as conn:
            conn.execute(delete(ActivityEvent).where(imported_rows(name), ActivityEvent.kind != EventKind.PLAN_CHANGE,
                                                     ActivityEvent.kind != EventKind.SEAT_CHANGE))  # fmt: skip
    if checkpoint.complete:
        result.chunks_skipped = checkpoint.done
        return
    kinds, features = _type_lookup(spec, names)
    columns = [c for c in (spec.account, spec.time, spec.type, spec.user) if c]
    dtypes = {c: str for c in columns if c != spec.time}
    reader = pd.read_csv(path, sep=sep, usecols=columns, dtype=dtypes, chunksize=spec.chunk_rows)
    with engine.connect() as conn:
        ids = account_ids_by_key(conn)
    chunks = 0
    for chunks, chunk in enumerate(reader, start=1):
        if chunks <= checkpoint.done:
            result.chunks_skipped += 1
            continue
        result.events_read += len(chunk)
        rows = aggregate_chunk(chunk, spec, kinds, features, result.unmapped)
        with engine.begin() as conn:
            ids = ensure_accounts(conn, rows["account_key"].to_numpy(), ids)
            _ensure_features(conn, set(rows.loc[rows["kind"] == EventKind.FEATURE_USED.value, "feature"]))
            result.event_rows += staged_insert(conn, ActivityEvent.__table__, _event_frame(rows, ids, name, chunks),
                                               EVENT_FIELDS, conflict=["source", "external_id"])  # fmt: skip
        checkpoint.save(chunks)
        result.chunks += 1
        if progress:
            progress(f"chunk {chunks}: {result.events_read:,} events read")
    checkpoint.save(chunks, complete=True)


def _terms_frame(table: pd.DataFrame, spec: SubscriptionsSpec, name: str) -> pd.DataFrame:
    """The export's terms in SubscriptionTerm's columns (account as the export's key)."""

    def column(source: str | None, default: Any = None) -> pd.Series:
        return table[source] if source else pd.Series(default, index=table.index)

    if spec.addon is None:
        addon = pd.Series(False, index=table.index)
    elif spec.addon.values is None:
        addon = column(spec.addon.source).astype(str).str.strip().str.lower().isin({"true", "1", "yes", "t", "y"})
    else:
        addon = column(spec.addon.source).astype(str).isin(spec.addon.values)
    keys = column(spec.id).astype(str) if spec.id else pd.Series(np.arange(1, len(table) + 1), index=table.index)
    return pd.DataFrame(
        {
            "account_key": table[spec.account].astype(str),
            "term_key": (_prefix(name) + keys.astype(str)).str.slice(0, 128),
            "plan": column(spec.plan).astype("string").str.slice(0, 64).astype(object),
            "is_addon": addon.astype(bool),
            "mrr": pd.to_numeric(table[spec.mrr], errors="coerce").fillna(0.0).astype("float64"),
            "seats": pd.to_numeric(column(spec.seats), errors="coerce").astype("float64"),
            "billing_period": column(spec.billing_period).astype("string").str.slice(0, 16).astype(object),
            "discount": pd.to_numeric(column(spec.discount), errors="coerce").astype("float64"),
            "start_date": pd.to_datetime(table[spec.start], errors="coerce").dt.normalize(),
            "end_date": pd.to_datetime(table[spec.end], errors="coerce").dt.normalize(),
        }
    ).dropna(subset=["start_date"])


TERM_FIELDS = ("account_id", "source", "term_key", "plan", "is_addon", "mrr", "seats", "billing_period", "discount",
               "start_date", "end_date")  # fmt: skip


def load_terms(conn: Connection, table: pd.DataFrame, spec: SubscriptionsSpec, name: str) -> pd.DataFrame:
    """Upsert the terms by (import, term id); returns them with store account ids."""
    terms = _terms_frame(table, spec, name)
    ids = ensure_accounts(conn, terms["account_key"].to_numpy(), account_ids_by_key(conn))
    terms["account_id"] = terms["account_key"].map(ids).astype("int64")
    terms["source"] = name[:64]
    records = terms.assign(start_date=terms["start_date"].dt.date, end_date=terms["end_date"].dt.date)
    records = records[list(TERM_FIELDS)].astype(object).where(records[list(TERM_FIELDS)].notna(), None)
    upsert(conn, SubscriptionTerm.__table__, records.to_dict("records"), conflict=["source", "term_key"],
           update=[c for c in TERM_FIELDS if c not in ("source", "term_key")])  # fmt: skip
    return terms


def _change_events(changes: pd.DataFrame, kind: EventKind, name: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": changes["account_id"].astype("int64"),
            "contact_id": pd.Series(pd.NA, index=changes.index, dtype="Int64"),
            "occurred_at": changes["day"],
            "kind": kind.value,
            "feature": None,
            "count": 1,
            "value": changes["delta"].astype("float64"),
            "source": SOURCE,
            "external_id": _prefix(name) + "terms:" + kind.value + ":" + changes["account_id"].astype(str) + ":"
            + changes["day"].dt.strftime("%Y%m%d"),
        }
    )  # fmt: skip


def apply_terms(conn: Connection, terms: pd.DataFrame, spec: SubscriptionsSpec, name: str, data_end: date,
                result: HistoryResult) -> None:  # fmt: skip
    """Account dates and plan fields from the terms, and their plan/seat changes as activity events (replacing
    the ones an earlier import of the same name derived)."""
    outcomes = churn_dates(terms, pd.Timestamp(data_end), spec.successor_grace_days)
    result.churned = int(outcomes["churned_at"].notna().sum())
    churned = outcomes["churned_at"]
    records = [
        {"aid": int(a), "since": s.date(), "churned": None if pd.isna(c) else c.date(),
         "status": "active" if pd.isna(c) else "churned"}
        for a, s, c in zip(outcomes.index, outcomes["customer_since"], churned, strict=True)
    ]  # fmt: skip
    if records:  # one executemany of one statement
        statement = (
            update(Account.__table__)
            .where(Account.__table__.c.id == bindparam("aid"))
            .values(customer_since=bindparam("since"), churned_at=bindparam("churned"), status=bindparam("status"))
        )
        conn.execute(statement, records)
    conn.execute(delete(ActivityEvent).where(imported_rows(name), ActivityEvent.kind.in_(
        [EventKind.PLAN_CHANGE.value, EventKind.SEAT_CHANGE.value])))  # fmt: skip
    end = pd.Timestamp(data_end)  # a term's scheduled end after the data is no change yet
    plan, seats = mrr_changes(terms), seat_changes(terms)
    plan, seats = plan[plan["day"] <= end], seats[seats["day"] <= end]
    result.plan_changes, result.seat_changes = len(plan), len(seats)
    for changes, kind in ((plan, EventKind.PLAN_CHANGE), (seats, EventKind.SEAT_CHANGE)):
        staged_insert(conn, ActivityEvent.__table__, _change_events(changes, kind, name), EVENT_FIELDS,
                      conflict=["source", "external_id"])  # fmt: skip


def _data_end(conn: Connection, name: str, terms: pd.DataFrame | None) -> date:
    """The last day the import knows about: its latest event, or its latest term start."""
    last = conn.execute(select(func.max(ActivityEvent.occurred_at)).where(imported_rows(name))).scalar()
    candidates = [pd.Timestamp(last)] if last is not None else []
    if terms is not None and len(terms):
        candidates.append(terms["start_date"].max())
    return max(candidates).date() if candidates else date.today()


def refresh_imported_rollups(conn: Connection, name: str) -> None:
    """Rebuild the daily rollups of every account of this import over its whole span (one set-based pass)."""
    bounds = conn.execute(
        select(func.min(ActivityEvent.occurred_at), func.max(ActivityEvent.occurred_at)).where(imported_rows(name))
    ).one()
    if bounds[0] is None:
        return
    accounts = [a for (a,) in conn.execute(select(ActivityEvent.account_id).where(imported_rows(name)).distinct())]
    refresh_rollups(conn, sorted(accounts), pd.Timestamp(bounds[0]).date(), pd.Timestamp(bounds[1]).date())


def import_history(engine: Engine, history: HistorySpec, name: str, tables: dict[str, tuple[Path, str]],
                   folder: Path, progress: Progress = None) -> HistoryResult:  # fmt: skip
    """Events, then terms, then the derived account state and rollups; `tables` maps table name -> (path, sep)."""
    result = HistoryResult()
    if history.events:
        spec = history.events
        names = None
        if spec.type_names:
            path, sep = tables[spec.type_names.table]
            table = pd.read_csv(path, sep=sep, dtype=str)
            names = dict(zip(table[spec.type_names.id], table[spec.type_names.name], strict=True))
        path, sep = tables[spec.table]
        load_events(engine, spec, path, sep, names, name, folder, result, progress)
    terms = None
    with engine.begin() as conn:
        if history.subscriptions:
            path, sep = tables[history.subscriptions.table]
            terms = load_terms(conn, pd.read_csv(path, sep=sep, low_memory=False), history.subscriptions, name)
            result.terms = len(terms)
        data_end = _data_end(conn, name, terms)
        result.data_end = data_end.isoformat()
        if terms is not None and history.subscriptions:
            apply_terms(conn, terms, history.subscriptions, name, data_end, result)
        refresh_imported_rollups(conn, name)
        result.accounts = conn.execute(
            select(func.count(func.distinct(ActivityEvent.account_id))).where(imported_rows(name))
        ).scalar() or (terms["account_id"].nunique() if terms is not None else 0)
    return result
