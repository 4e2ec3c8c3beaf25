"""`cse import` of product history: the event log and the subscription terms go into the store itself.

The event log is read once, however many event types it holds, and reduced to per-account, day and event-type
sums with distinct users per day (app/history/usage.py); those sums replace the import's earlier ones in
`usage_days` in one transaction (PostgreSQL binary COPY, SQLite executemany in slices), so reading the same file
again changes nothing. On PostgreSQL a big load's foreign keys are checked once at its end rather than per row
(app.store.bulk.foreign_keys_checked_once). Raw event rows are not kept: the rollups and the history panel need
only the sums.

Subscription terms are upserted by (import, term id); churn dates, upsells, downsells and seat changes are derived
from them (engine/subscriptions.py) and written as the account's dates and as plan/seat change events. The daily
rollups of the import's accounts are then rebuilt once, set-based, from usage and events alike, so the monthly
panel and the labels of app/ml/dataset.py work on imported history as on CRM data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, update

from app.history.mapping import EventsSpec, HistorySpec, SubscriptionsSpec
from app.history.usage import Checkpoint, Progress, ReadStats, TypeLookup, read_usage
from app.store.bulk import copy_binary, copy_rows, foreign_keys_checked_once, staged_insert, upsert
from app.store.load import EVENT_FIELDS, _ensure_features, account_ids_by_key, lookup, refresh_rollups
from app.store.models import Account, AccountDay, ActivityEvent, Feature, SubscriptionTerm, UsageDay
from engine.canonical import EventKind
from engine.subscriptions import churn_dates, mrr_changes, seat_changes

SOURCE = "import"  # activity_events.source of the plan/seat changes derived from terms; ids start "<import>:"
WRITE_SLICE = 200_000  # usage rows per executemany call (SQLite), so the tuples never all exist at once


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
    """The activity rows an import of this name wrote (the plan and seat changes of its terms)."""
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


def _has_usage(conn: Connection, name: str) -> bool:
    return conn.execute(select(UsageDay.account_id).where(UsageDay.source == name).limit(1)).first() is not None


def write_usage(conn: Connection, usage: pd.DataFrame, name: str) -> int:
    """Replace the import's usage rows with these: one delete, then bulk writes (binary COPY on PostgreSQL,
    executemany in slices on SQLite)."""
    conn.execute(delete(UsageDay).where(UsageDay.source == name))
    # sums an earlier version of the import kept as activity events (every kind but the terms' changes)
    conn.execute(delete(ActivityEvent).where(imported_rows(name), ActivityEvent.kind.not_in(
        [EventKind.PLAN_CHANGE.value, EventKind.SEAT_CHANGE.value])))  # fmt: skip
    if usage.empty:
        return 0
    ids = ensure_accounts(conn, usage["account_key"].unique(), account_ids_by_key(conn))
    columns = [c for c in usage.columns if c not in ("account_key", "day", "types")]
    account_id = lookup(usage["account_key"], ids).to_numpy(dtype=np.int64)
    if conn.dialect.name == "postgresql":
        source = np.full(len(usage), name.encode(), dtype=f"S{len(name.encode())}")
        fixed = {"account_id": account_id, "day": usage["day"].to_numpy(dtype="datetime64[D]"), "source": source,
                 **{c: usage[c].to_numpy(dtype=np.int64) for c in columns}}  # fmt: skip
        with foreign_keys_checked_once(conn, [UsageDay.__table__], len(usage)):
            copy_binary(conn, UsageDay.__table__, fixed, ("types", usage["types"].to_numpy()))
        return len(usage)
    day = np.datetime_as_string(usage["day"].to_numpy(dtype="datetime64[D]"), unit="D")  # the text SQLite reads
    values = [usage[c].to_numpy() for c in (*columns, "types")]
    for start in range(0, len(usage), WRITE_SLICE):
        part = slice(start, start + WRITE_SLICE)
        rows = list(zip(account_id[part].tolist(), day[part].tolist(), repeat(name),
                        *[v[part].tolist() for v in values]))  # fmt: skip
        copy_rows(conn, UsageDay.__table__, ["account_id", "day", "source", *columns, "types"], rows)
    return len(usage)


def _feature_bits(engine: Engine, types: TypeLookup) -> dict[str, int]:
    """The features mask bit of every feature the mapping's feature_used types count as (given one if new)."""
    used = {f for k, f in zip(types.kinds, types.features, strict=True) if k == EventKind.FEATURE_USED.value}
    with engine.begin() as conn:
        _ensure_features(conn, used)
        return dict(conn.execute(select(Feature.key, Feature.bit)).all())


def load_events(engine: Engine, spec: EventsSpec, path: Path, sep: str, names: dict[str, str] | None, name: str,
                folder: Path, result: HistoryResult, progress: Progress = None) -> None:  # fmt: skip
    """Read the log into usage rows and store them, unless this very file is already in (see module doc)."""
    types = TypeLookup.of(spec, names)
    checkpoint = Checkpoint(folder, path, spec, types)
    with engine.connect() as conn:
        stored = _has_usage(conn, name)
    if checkpoint.complete and stored:
        result.chunks_skipped = checkpoint.done
        return
    stats = ReadStats()
    usage = read_usage(spec, path, sep, types, _feature_bits(engine, types), checkpoint, stats, progress)
    result.events_read, result.chunks, result.chunks_skipped = stats.events_read, stats.chunks, stats.chunks_skipped
    result.unmapped = stats.unmapped
    with engine.begin() as conn:
        result.event_rows = write_usage(conn, usage, name)


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
    """Upsert the terms by (import, term id) in one staged statement; returns them with store account ids."""
    terms = _terms_frame(table, spec, name)
    ids = ensure_accounts(conn, terms["account_key"].to_numpy(), account_ids_by_key(conn))
    terms["account_id"] = lookup(terms["account_key"], ids).astype("int64")
    terms["source"] = name[:64]
    records = terms.drop_duplicates("term_key", keep="last")  # a repeated term id: its last row, as row-by-row
    records = records.assign(**{c: _date_text(records[c]) for c in ("start_date", "end_date")})
    staged_insert(conn, SubscriptionTerm.__table__, records, TERM_FIELDS, conflict=["source", "term_key"],
                  update=[c for c in TERM_FIELDS if c not in ("source", "term_key")])  # fmt: skip
    return terms


def _date_text(days: pd.Series) -> pd.Series:
    """Dates as the `YYYY-MM-DD` text both stores read into a date column (None where missing)."""
    return days.dt.strftime("%Y-%m-%d").astype(object).where(days.notna(), None)


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


def _usage_bounds(conn: Connection, name: str) -> tuple[date | None, date | None]:
    first, last = conn.execute(select(func.min(UsageDay.day), func.max(UsageDay.day))
                               .where(UsageDay.source == name)).one()  # fmt: skip
    return first, last


def _data_end(conn: Connection, name: str, terms: pd.DataFrame | None) -> date:
    """The last day the import knows about: its latest usage day, or its latest term start."""
    last = _usage_bounds(conn, name)[1]
    candidates = [pd.Timestamp(last)] if last is not None else []
    if terms is not None and len(terms):
        candidates.append(terms["start_date"].max())
    return max(candidates).date() if candidates else date.today()


def _import_accounts(conn: Connection, name: str) -> list[int]:
    usage = select(UsageDay.account_id).where(UsageDay.source == name)
    changes = select(ActivityEvent.account_id).where(imported_rows(name))
    return sorted(a for (a,) in conn.execute(usage.union(changes)))


def refresh_imported_rollups(conn: Connection, name: str, accounts: list[int]) -> None:
    """Rebuild the daily rollups of the import's accounts over its whole span (one set-based pass; a big import's
    foreign keys checked once, see foreign_keys_checked_once)."""
    first, last = _usage_bounds(conn, name)
    changes = conn.execute(select(func.min(ActivityEvent.occurred_at), func.max(ActivityEvent.occurred_at))
                           .where(imported_rows(name))).one()  # fmt: skip
    days = [pd.Timestamp(d).date() for d in (first, last, *changes) if d is not None]
    if days and accounts:
        stored = conn.execute(select(func.count()).select_from(UsageDay).where(UsageDay.source == name)).scalar()
        with foreign_keys_checked_once(conn, [AccountDay.__table__], stored or 0):
            refresh_rollups(conn, accounts, min(days), max(days))


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
        accounts = _import_accounts(conn, name)
        refresh_imported_rollups(conn, name, accounts)
        result.accounts = len(accounts) or (terms["account_id"].nunique() if terms is not None else 0)
    return result
