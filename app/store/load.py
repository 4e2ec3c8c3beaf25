"""Loading canonical records into the store: accounts, contacts and activity events, idempotent on re-reads.

Connectors and the demo both hand over DataFrames in canonical columns; this module resolves keys to ids, writes
set-based, and keeps the daily rollups that scoring reads in step with the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)

from app.store.bulk import (
    copy_rows,
    dialect_insert,
    insert_from_select_ignoring_conflicts,
    staged_insert,
    temp_table,
    upsert,
)
from app.store.models import Account, AccountDay, ActivityEvent, Contact, Feature, UsageDay
from engine.canonical import EventKind

ACCOUNT_FIELDS = (
    "key", "name", "domain", "segment", "plan", "arr", "seats_purchased", "seats_active", "api_limit",
    "api_used", "storage_limit_gb", "storage_used_gb", "customer_since", "renewal_date", "owner",
    "lifecycle_stage", "status", "churned_at", "roi_pct", "goal_attainment", "first_value_at", "timezone",
    "referred_by",
)  # fmt: skip
CONTACT_FIELDS = ("email", "name", "role", "is_champion", "is_exec_sponsor", "last_seen", "unsubscribed")
EVENT_FIELDS = (
    "account_id", "contact_id", "occurred_at", "kind", "feature", "count", "value", "source", "external_id",
)  # fmt: skip
MAX_FEATURE_BITS = 62
# Product usage a loader may keep as daily sums (UsageDay) instead of event rows: the AccountDay count each kind
# adds to. Nothing reads these events one by one (CRM activity, surveys, milestones and churn signals are read so,
# and stay events); a login's value is its session minutes.
USAGE_KINDS = {
    EventKind.LOGIN.value: "logins", EventKind.FEATURE_USED.value: "feature_uses",
    EventKind.API_CALL.value: "api_calls", EventKind.SELF_SERVICE.value: "self_service",
}  # fmt: skip
BOOK_SOURCE = "generated-book"  # usage_days.source of a generated book's product usage (app.book_loader)
DAY_BITS = 20  # an (account, day) pair packed into one int64: days since 1970 fit in 20 bits until 4840


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict]:
    present = [c for c in columns if c in frame.columns]
    values = frame.loc[:, present].astype(object).where(frame.loc[:, present].notna(), None)
    return values.to_dict("records")


def lookup(keys: pd.Series, ids: Mapping[str, int]) -> pd.Series:
    """`keys` replaced by their id in `ids`, NaN where unknown (or missing), in one hashed lookup: `Series.map`
    with a dict walks a string column value by value in Python (the demo book's keys, e-mails and features: 0.54
    against 0.11 s of CPU, `python -m bench.load`)."""
    position = pd.Index(list(ids), dtype=object).get_indexer(keys)
    values = np.append(np.fromiter(ids.values(), dtype=np.float64, count=len(ids)), np.nan)
    return pd.Series(values[position], index=keys.index)  # position -1 (not found) is the NaN appended


def account_ids_by_key(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(Account.key, Account.id)).all())


def contact_ids_by_email(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(Contact.email, Contact.id)).all())


def load_accounts(conn: Connection, accounts: pd.DataFrame) -> dict[str, int]:
    """Upsert accounts by canonical key and return key → id for every account in the store."""
    records = _records(accounts, ACCOUNT_FIELDS)
    now = datetime.now()
    for record in records:
        record["updated_at"] = now
    updatable = [c for c in (*ACCOUNT_FIELDS, "updated_at") if c != "key" and (c in accounts or c == "updated_at")]
    upsert(conn, Account.__table__, records, conflict=["key"], update=updatable)
    return account_ids_by_key(conn)


def load_contacts(conn: Connection, contacts: pd.DataFrame, account_ids: dict[str, int]) -> dict[str, int]:
    """Upsert contacts by email (the identity every vendor shares) and return email → id."""
    frame = contacts.assign(account_id=lookup(contacts["account_key"], account_ids))
    frame = frame[frame["account_id"].notna()]
    records = _records(frame, ("account_id", *CONTACT_FIELDS))
    updatable = [c for c in ("account_id", *CONTACT_FIELDS) if c != "email" and (c in contacts or c == "account_id")]
    upsert(conn, Contact.__table__, records, conflict=["email"], update=updatable)
    return contact_ids_by_email(conn)


def _ensure_features(conn: Connection, keys: set[str]) -> None:
    """Give every feature key seen a stable bit of the daily features mask (62 fit in a signed BIGINT)."""
    known = dict(conn.execute(select(Feature.key, Feature.bit)).all())
    free_bits = iter(range(max(known.values(), default=-1) + 1, MAX_FEATURE_BITS))
    unseen = sorted(keys - known.keys())
    new = [{"key": key, "bit": bit, "mask": 1 << bit} for key, bit in zip(unseen, free_bits, strict=False)]
    upsert(conn, Feature.__table__, new, conflict=["key"])


def load_events(
    conn: Connection,
    events: pd.DataFrame,
    account_ids: dict[str, int],
    contact_ids: dict[str, int] | None = None,
    usage_source: str | None = None,
) -> int:
    """Insert events not seen before (by source + external id) and rebuild the rollups of the days they touch.

    With `usage_source`, the events of USAGE_KINDS are kept as daily sums under that source instead (see
    `daily_usage`; an account-day's sums replace the source's earlier ones, so reading the same events again
    changes nothing): one row per account and day rather than one per event, what `cse import` does with a product
    log. The rollups are the same either way.

    Returns the number of new event rows. Events whose account is unknown are not loaded (the caller quarantines).
    """
    frame = events.assign(account_id=lookup(events["account_key"], account_ids))
    contact_ids = contact_ids or {}
    emails = frame["contact_email"] if "contact_email" in frame else pd.Series(None, index=frame.index)
    frame["contact_id"] = lookup(emails, contact_ids)
    frame = frame[frame["account_id"].notna()]
    if frame.empty:
        return 0
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["contact_id"] = frame["contact_id"].astype("Int64")
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).dt.tz_localize(None)
    _ensure_features(conn, set(frame.loc[frame["kind"] == EventKind.FEATURE_USED, "feature"].dropna().unique()))

    rows = frame
    if usage_source is not None:
        usage = frame["kind"].isin(list(USAGE_KINDS)).to_numpy()
        bits = dict(conn.execute(select(Feature.key, Feature.bit)).all())
        write_usage_days(conn, daily_usage(frame[usage], bits), usage_source)
        rows = frame[~usage]
    inserted = staged_insert(conn, ActivityEvent.__table__, rows, EVENT_FIELDS, conflict=["source", "external_id"])
    first = frame["occurred_at"].min().date()
    last = frame["occurred_at"].max().date()
    refresh_rollups(conn, sorted(frame["account_id"].unique().tolist()), first, last)
    return inserted


def daily_usage(events: pd.DataFrame, feature_bits: dict[str, int]) -> pd.DataFrame:
    """Usage events (USAGE_KINDS; `account_id`, naive `occurred_at`, `kind`, `feature`, `count`, `value`,
    `contact_id`) as one row per account and day in UsageDay's columns: the sums `refresh_rollups` would take from
    the events (logins and session minutes, feature uses and the OR of their features' bits, API calls,
    self-service) and the distinct contacts that logged in. Computed on integer keys in NumPy, no grouping of
    Python objects."""
    account = events["account_id"].to_numpy(dtype=np.int64)
    day = events["occurred_at"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    keys, row = np.unique((account << DAY_BITS) | day, return_inverse=True)
    kind = events["kind"].to_numpy(dtype=object)
    count = events["count"].to_numpy(dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    for kind_value, column in USAGE_KINDS.items():
        hit = kind == kind_value
        columns[column] = np.bincount(row[hit], weights=count[hit], minlength=len(keys)).astype(np.int64)
    login = kind == EventKind.LOGIN.value
    minutes = np.nan_to_num(events["value"].to_numpy(dtype=np.float64)[login])
    columns["session_minutes"] = np.bincount(row[login], weights=minutes, minlength=len(keys))
    bit = lookup(events["feature"], feature_bits).to_numpy()
    used = (kind == EventKind.FEATURE_USED.value) & ~np.isnan(bit)
    masks = np.zeros(len(keys), dtype=np.int64)
    np.bitwise_or.at(masks, row[used], np.left_shift(1, bit[used].astype(np.int64)))
    columns["features_mask"] = masks
    contact = events["contact_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    seen = login & ~np.isnan(contact)
    user_days = pd.unique((row[seen].astype(np.int64) << 32) | contact[seen].astype(np.int64))  # ids < 2**32
    columns["active_users"] = np.bincount(user_days >> 32, minlength=len(keys)).astype(np.int64)
    return pd.DataFrame(
        {"account_id": keys >> DAY_BITS, "day": (keys & ((1 << DAY_BITS) - 1)).astype("datetime64[D]"), **columns}
    )


def write_usage_days(conn: Connection, usage: pd.DataFrame, source: str) -> int:
    """Store `daily_usage` rows under `source`, replacing the source's sums of the same account-days (no
    per-type counts: `types` empty). Returns the number of rows written."""
    if usage.empty:
        return 0
    day = np.datetime_as_string(usage["day"].to_numpy(dtype="datetime64[D]"), unit="D")  # text both stores read
    zeros = {c: 0 for c in USAGE_COUNTS if c not in usage}
    frame = usage.assign(day=day.astype(object), source=source, types="", **zeros)
    values = [c for c in frame.columns if c not in ("account_id", "day", "source")]
    return staged_insert(conn, UsageDay.__table__, frame, ["account_id", "day", "source", *values],
                         conflict=["account_id", "day", "source"], update=values)  # fmt: skip


def _sum_where(kind: EventKind, column) -> object:
    return func.coalesce(func.sum(case((ActivityEvent.kind == kind.value, column), else_=0)), 0)


def refresh_rollups(conn: Connection, account_ids: list[int], first: date, last: date) -> None:
    """Recompute AccountDay rows (and first-value/first-activity dates) for these accounts and days from events.

    Recomputing instead of incrementing keeps the rollup exact when the same events are read twice.
    """
    touched = temp_table(conn, "_touched_accounts", [Column("account_id", Integer, primary_key=True)])
    copy_rows(conn, touched, ["account_id"], [(a,) for a in account_ids])
    in_touched = AccountDay.account_id.in_(select(touched.c.account_id))
    conn.execute(delete(AccountDay).where(in_touched, AccountDay.day.between(first, last)))

    e = ActivityEvent
    day = func.date(e.occurred_at)
    if conn.dialect.name == "postgresql":
        day = cast(day, Date)
    feature_mask = func.coalesce(
        func.sum(func.distinct(case((e.kind == EventKind.FEATURE_USED.value, Feature.mask), else_=None))), 0
    )
    mask_expr = cast(feature_mask, BigInteger)
    columns = {
        "account_id": e.account_id,
        "day": day,
        "logins": _sum_where(EventKind.LOGIN, e.count),
        "session_minutes": _sum_where(EventKind.LOGIN, func.coalesce(e.value, 0.0)),
        "feature_uses": _sum_where(EventKind.FEATURE_USED, e.count),
        "features_mask": mask_expr,
        "api_calls": _sum_where(EventKind.API_CALL, e.count),
        "tickets_opened": _sum_where(EventKind.TICKET_OPENED, e.count),
        "tickets_closed": _sum_where(EventKind.TICKET_CLOSED, e.count),
        "resolution_hours": _sum_where(EventKind.TICKET_CLOSED, func.coalesce(e.value, 0.0)),
        "escalations": _sum_where(EventKind.ESCALATION, e.count),
        "self_service": _sum_where(EventKind.SELF_SERVICE, e.count),
        "outreach": _sum_where(EventKind.OUTREACH, e.count),
        "replies": _sum_where(EventKind.EMAIL_REPLIED, e.count),
        "meetings": _sum_where(EventKind.MEETING, e.count),
        "seat_delta": _sum_where(EventKind.SEAT_CHANGE, func.coalesce(e.value, 0.0)),
        "plan_delta": _sum_where(EventKind.PLAN_CHANGE, func.coalesce(e.value, 0.0)),
        "survey_sum": _sum_where(EventKind.SURVEY_RESPONSE, func.coalesce(e.value, 0.0)),
        "survey_count": _sum_where(EventKind.SURVEY_RESPONSE, 1),
        "churn_signals": func.coalesce(
            func.sum(
                case(
                    (
                        e.kind.in_(
                            [
                                EventKind.DATA_EXPORT.value,
                                EventKind.CANCELLATION_INQUIRY.value,
                                EventKind.COMPETITOR_MENTION.value,
                            ]
                        ),
                        e.count,
                    ),
                    else_=0,
                )
            ),
            0,
        ),
    }
    aggregate = (
        select(*[expr.label(name) for name, expr in columns.items()])
        .select_from(e)
        .join(touched, touched.c.account_id == e.account_id)
        .outerjoin(Feature, and_(Feature.key == e.feature, e.kind == EventKind.FEATURE_USED.value))
        .where(e.occurred_at >= datetime.combine(first, datetime.min.time()))
        .where(e.occurred_at < datetime.combine(last, datetime.min.time()) + pd.Timedelta(days=1))
        .group_by(e.account_id, day)
    )
    insert_from_select_ignoring_conflicts(
        conn, AccountDay.__table__, list(columns), aggregate, conflict=["account_id", "day"]
    )
    _add_usage(conn, touched, first, last)
    _refresh_account_dates(conn, touched)
    touched.drop(conn)


USAGE_COUNTS = ("logins", "feature_uses", "api_calls", "tickets_opened", "tickets_closed", "escalations",
                "self_service", "outreach", "replies", "meetings", "survey_count", "churn_signals")  # fmt: skip


def _add_usage(conn: Connection, touched, first: date, last: date) -> None:
    """Add the imported usage sums (UsageDay) of the touched accounts and days to their rollups, one import
    (source) at a time so each day's feature masks combine by OR.

    Per source, the days that already have a rollup (from events or an earlier source: few) are updated by an
    upsert, and the rest (nearly all of a big import) go in by a plain INSERT: an upsert costs PostgreSQL about
    twice a plain insert per row, ~10 s for a million days. (No ORDER BY: an import's usage rows are stored in key
    order already, and sorting a million of them costs PostgreSQL a spill to disk and SQLite ~100 MB.)"""
    u, d = UsageDay.__table__, AccountDay.__table__
    in_range = and_(u.c.account_id.in_(select(touched.c.account_id)), u.c.day.between(first, last))
    sources = [s for (s,) in conn.execute(select(u.c.source).where(in_range).distinct())]
    added = {"features_mask": u.c.features_mask, "session_minutes": u.c.session_minutes,
             **{c: u.c[c] for c in USAGE_COUNTS}}  # fmt: skip
    zeros = {c.name: literal(0, c.type) for c in d.columns if c.name not in {"account_id", "day", *added}}
    columns = ["account_id", "day", *added, *zeros]
    rolled_up = exists().where(d.c.account_id == u.c.account_id, d.c.day == u.c.day)
    for source in sources:
        rows = select(u.c.account_id, u.c.day, *[v.label(k) for k, v in added.items()],
                      *[v.label(k) for k, v in zeros.items()]).where(in_range, u.c.source == source)  # fmt: skip
        stmt = dialect_insert(conn, d).from_select(columns, rows.where(rolled_up))
        update_to = {c: d.c[c] + stmt.excluded[c] for c in (*USAGE_COUNTS, "session_minutes")}
        update_to["features_mask"] = d.c.features_mask.op("|")(stmt.excluded.features_mask)
        conn.execute(stmt.on_conflict_do_update(index_elements=["account_id", "day"], set_=update_to))
        conn.execute(d.insert().from_select(columns, rows.where(~rolled_up)))


def _refresh_account_dates(conn: Connection, touched) -> None:
    """First value and first activity, from events; a first-value date a CRM field already gave wins if earlier.

    The first-value events are found in one grouped pass over the touched accounts' events into a small keyed table:
    as a correlated subquery it walked every event of every account, up to three times (once per use in the CASE).
    """
    e = ActivityEvent
    reached = temp_table(
        conn, "_first_value_events", [Column("account_id", Integer, primary_key=True), Column("at", DateTime)]
    )
    conn.execute(
        reached.insert().from_select(
            ["account_id", "at"],
            select(e.account_id, func.min(e.occurred_at))
            .join(touched, touched.c.account_id == e.account_id)
            .where(e.kind == EventKind.MILESTONE.value, e.feature == "first_value")
            .group_by(e.account_id),
        )
    )
    first_value_event = func.date(select(reached.c.at).where(reached.c.account_id == Account.id).scalar_subquery())
    if conn.dialect.name == "postgresql":
        first_value_event = cast(first_value_event, Date)
    known = Account.first_value_at
    first_value = case(
        (known.is_(None), first_value_event),
        (and_(first_value_event.is_not(None), first_value_event < known), first_value_event),
        else_=known,
    )
    first_activity = (
        select(func.min(AccountDay.day))
        .where(AccountDay.account_id == Account.id, (AccountDay.logins + AccountDay.feature_uses) > 0)
        .scalar_subquery()
    )
    conn.execute(
        update(Account)
        .where(Account.id.in_(select(touched.c.account_id)))
        .values(first_value_at=first_value, first_activity_at=first_activity)
    )
    reached.drop(conn)
