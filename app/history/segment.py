"""Processing of stored Segment messages (app/web/segment.py): track, page and screen calls become activity events
through the same event-type mapping an import uses, so live usage lands in the same activity table with the same
meaning. A page or screen call's event type is its name, or failing that in the mapping, "page" / "screen".

A track call's account is its `context.groupId` (or `groupId` / `properties.groupId`), else the account its user
was last put in by a group call. Each event is kept as one activity row (source `segment`, external id = its
messageId), and each user active on a day counts once as a login that day, as in an import with a user column.
Messages of an event name the mapping does not list, or with no account, are marked processed with the reason.
Messages are claimed, held and settled as the CRM events are (app/webhook_events/claims.py), so a run that dies
leaves them to the next, and a message that keeps killing its run ends `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, bindparam, select, update

from app.history.load import ensure_accounts
from app.history.mapping import EventType
from app.store.bulk import upsert
from app.store.load import load_events
from app.store.models import Account, RecordLink, WebhookEvent
from app.webhook_events.claims import RetryPolicy, claim_events
from engine.canonical import EventKind

VENDOR = "segment"
SOURCE = "segment"
USER_OBJECT = "user"
VIEWS = ("page", "screen")
USAGE_CALLS = ("track", *VIEWS)  # the calls that are product usage (identify and group only link users)
USER_DAY_KIND = EventKind.LOGIN  # each user active on a day counts as one login that day, as in an import


@dataclass
class SegmentResult:
    messages: int = 0
    events: int = 0
    accounts: list[int] = field(default_factory=list)
    skipped: int = 0


def _link_users(engine: Engine, groups: list) -> None:
    """group calls: the user belongs to the account named by groupId (created if new)."""
    pairs = {
        (r.refs["user_id"], r.refs["group_id"]) for r in groups if r.refs.get("user_id") and r.refs.get("group_id")
    }
    if not pairs:
        return
    with engine.begin() as conn:
        ids = ensure_accounts(conn, [g for _, g in pairs], {})
        links = [{"vendor": VENDOR, "object": USER_OBJECT, "external_id": u[:128], "account_id": ids[g]}
                 for u, g in sorted(pairs)]  # fmt: skip
        upsert(conn, RecordLink.__table__, links, ["vendor", "object", "external_id"], update=["account_id"])


def _activity(engine: Engine, tracks: list, types: dict[str, EventType]) -> tuple[pd.DataFrame, dict[int, str]]:
    """Track rows as canonical activity rows (account_key, ...), and the reason for each one left out."""
    with engine.connect() as conn:
        users = dict(
            conn.execute(
                select(RecordLink.external_id, Account.key)
                .join(Account, Account.id == RecordLink.account_id)
                .where(RecordLink.vendor == VENDOR, RecordLink.object == USER_OBJECT)
            ).all()
        )
    rows, skipped = [], {}
    for r in tracks:
        key = r.object if r.kind not in types and r.object in VIEWS else r.kind  # a named view, else every view
        mapped = types.get(key)
        account = r.refs.get("group_id") or users.get(r.refs.get("user_id") or "")
        if mapped is None:
            skipped[r.id] = f"event {r.kind!r} is not in the mapping's event types"
        elif not account:
            skipped[r.id] = "no groupId and no group call for this user"
        else:
            when = pd.to_datetime(r.refs.get("timestamp") or r.received_at, utc=True, errors="coerce")
            when = when.tz_convert(None) if not pd.isna(when) else pd.Timestamp(r.received_at)
            rows.append({"account_key": account, "occurred_at": when, "kind": mapped.kind.value,
                         "feature": mapped.feature or key, "count": 1, "value": None, "source": SOURCE,
                         "external_id": r.event_id, "user": r.refs.get("user_id"), "row": r.id})  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, skipped
    days = frame.dropna(subset=["user"]).assign(day=lambda f: f["occurred_at"].dt.normalize())
    user_days = days.drop_duplicates(["account_key", "user", "day"]).assign(
        occurred_at=lambda f: f["day"], kind=USER_DAY_KIND.value, feature="active_users",
        external_id=lambda f: "user-day:" + f["account_key"] + ":" + f["user"] + ":" + f["day"].dt.strftime("%Y%m%d"),
    )  # fmt: skip
    return pd.concat([frame, user_days.drop(columns="day")], ignore_index=True), skipped


def ingest_segment_events(engine: Engine, types: dict[str, EventType], limit: int = 50_000,
                          policy: RetryPolicy | None = None) -> SegmentResult:  # fmt: skip
    """Claim the waiting Segment messages, load their activity, mark them processed (with a reason when skipped)."""
    policy = policy or RetryPolicy()
    claim = claim_events(engine, policy, limit, WebhookEvent.__table__.c.vendor == VENDOR)
    rows = claim.rows
    result = SegmentResult(messages=len(rows))
    if not rows:
        return result
    with claim.held(engine, policy.lease):
        _link_users(engine, [r for r in rows if r.object == "group"])
        frame, skipped = _activity(engine, [r for r in rows if r.object in USAGE_CALLS], types)
        account_of: dict[str, int] = {}
        row_keys: dict[int, str] = {}
        if not frame.empty:
            row_keys = dict(zip(frame["row"].dropna().astype(int), frame["account_key"], strict=False))
            with engine.begin() as conn:
                account_of = ensure_accounts(conn, frame["account_key"].tolist(), {})
                result.events = load_events(conn, frame, account_of)
    result.accounts = sorted(set(account_of.values()))
    result.skipped = len(skipped)
    table = WebhookEvent.__table__
    done = [{"row_id": r.id, "reason": skipped.get(r.id), "account_ids": _accounts(r, row_keys, account_of)}
            for r in rows]  # fmt: skip
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"), claim.mine)
        .values(status="processed", processed_at=datetime.now(), reason=bindparam("reason"),
                account_ids=bindparam("account_ids"), claim=None)
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(statement, done)
    return result


def _accounts(row, row_keys: dict[int, str], account_of: dict[str, int]) -> list[int]:
    key = row_keys.get(row.id) or (row.refs or {}).get("group_id")
    return [account_of[key]] if key in account_of else []


def segment_types(mapping: str | None) -> dict[str, EventType]:
    """The event types of the import mapping named by CSE_SEGMENT_MAPPING (none: every track call is skipped)."""
    if not mapping:
        return {}
    from app.ml.import_mapping import load_mapping, resolve_mapping_path

    history = load_mapping(resolve_mapping_path(mapping)).history
    return history.events.event_types() if history and history.events else {}
