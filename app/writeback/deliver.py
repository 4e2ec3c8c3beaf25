"""Moving outbox rows to the vendors: dispatch into batch jobs, deliver a batch, sweep what a lost job left behind.

A row is `pending` until the dispatcher hands it to a job (`enqueued`, with the job id), then `done` with the
vendor's id, back to `pending` with a backoff after a transient failure, or `parked` with the vendor's error once
retrying cannot help. Every state change is a committed database write, so neither a killed worker nor a lost
Redis can lose a row: the sweeper returns `enqueued` rows whose job no longer exists to `pending`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, bindparam, func, or_, select, update

from app.store.models import Action, OutboxRow, Score
from app.writeback.outbox import CREATE_TASK, SEND_MESSAGE, UPDATE_FIELDS
from app.writeback.translate import to_crm_fields
from connectors.mapping import Mapping
from connectors.push import PushResult, PushRow, VendorPusher

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600)
STALE_AFTER = timedelta(minutes=10)
INTERRUPTED = (
    "delivery interrupted mid-call and this operation cannot be repeated safely (the vendor has no idempotency "
    "key): check whether it arrived, then requeue or drop it"
)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    parked: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


def dispatch(
    engine: Engine,
    enqueue: Callable[[str, str, list[int]], None],
    batch_limits: dict[str, dict[str, int]],
    now: datetime | None = None,
    limit: int = 50_000,
) -> list[tuple[str, list[int]]]:
    """Group due pending rows of the vendors in `batch_limits` into batches at the vendor's maximum; enqueue them.

    `enqueue(vendor, job_id, row_ids)` hands one batch to the queue. Rows are marked `enqueued` and committed
    before their job exists, so a crash in between leaves them for the sweeper rather than in limbo.
    """
    now = now or datetime.now()
    query = (
        select(OutboxRow.id, OutboxRow.vendor, OutboxRow.operation)
        .where(OutboxRow.status == "pending", or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now))
        .where(OutboxRow.vendor.in_(list(batch_limits)))
        .order_by(OutboxRow.id)
        .limit(limit)
    )
    batches: list[tuple[str, str, list[int]]] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        groups: dict[tuple[str, str], list[int]] = {}
        for row_id, vendor, operation in conn.execute(query):
            groups.setdefault((vendor, operation), []).append(row_id)
        for (vendor, operation), ids in groups.items():
            size = batch_limits.get(vendor, {}).get(operation, 1)
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                job_id = f"deliver-{vendor}-{uuid.uuid4().hex[:16]}"
                conn.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(chunk), OutboxRow.status == "pending")
                    .values(status="enqueued", job_id=job_id, updated_at=now)
                )
                batches.append((vendor, job_id, chunk))
    enqueued = []
    for vendor, job_id, chunk in batches:
        try:
            enqueue(vendor, job_id, chunk)
        except Exception:  # noqa: BLE001 - queue unreachable: the rows wait for the sweeper, nothing is lost
            log.warning("could not enqueue %s (%d rows); the sweeper will hand them out again", job_id, len(chunk),
                        exc_info=True)  # fmt: skip
            continue
        enqueued.append((job_id, chunk))
    return enqueued


def _push_rows(rows: list, mapping: Mapping | None) -> list[PushRow]:
    out = []
    for row in rows:
        payload = dict(row.payload)
        if row.operation == UPDATE_FIELDS:
            if mapping is None:
                raise ValueError(f"no push mapping for {row.vendor}")
            payload["fields"] = to_crm_fields(mapping, payload["fields"])
        out.append(PushRow(row.id, payload))
    return out


def _call(pusher: VendorPusher, operation: str, rows: list[PushRow]) -> list[PushResult]:
    if operation == UPDATE_FIELDS:
        return pusher.update_fields(rows)
    if operation == CREATE_TASK:
        return pusher.create_tasks(rows)
    if operation == SEND_MESSAGE:
        return pusher.send_messages(rows)
    return [PushResult(r.row_id, False, error=f"unknown operation {operation}", retryable=False) for r in rows]


def deliver_rows(
    engine: Engine,
    pusher: VendorPusher,
    mapping: Mapping | None,
    row_ids: list[int],
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Deliver the given rows (those still waiting; a second run of the same job finds nothing to do)."""
    report = DeliveryReport()
    with engine.connect() as conn:
        outbox = OutboxRow.__table__
        waiting = outbox.c.id.in_(row_ids), outbox.c.status.in_(("enqueued", "pending"))
        rows = conn.execute(select(outbox).where(*waiting)).all()
    report.skipped = len(row_ids) - len(rows)
    rows = _refuse_stale(engine, rows, now or datetime.now(), report)
    by_operation: dict[str, list] = {}
    for row in rows:
        by_operation.setdefault(row.operation, []).append(row)
    for operation, group in by_operation.items():
        if operation not in pusher.idempotent:
            _mark_sending(engine, [row.id for row in group])
        try:
            results = _call(pusher, operation, _push_rows(group, mapping))
        except Exception as error:  # noqa: BLE001 - the vendor call failed as a whole; every row retries
            results = [PushResult(r.id, False, error=f"{type(error).__name__}: {error}") for r in group]
        _record(engine, group, results, now or datetime.now(), max_attempts, report)
    return report


def _refuse_stale(engine: Engine, rows: list, now: datetime, report: DeliveryReport) -> list:
    """Supersede field writes planned for an older day than the account's latest score (up to today), so a
    backfill's or an old run's values never overwrite newer ones in the CRM; returns the rows still to deliver."""
    fields = [row for row in rows if row.operation == UPDATE_FIELDS and (row.payload.get("fields") or {}).get("as_of")]
    if not fields:
        return rows
    with engine.connect() as conn:
        latest = dict(
            conn.execute(
                select(Score.account_id, func.max(Score.as_of))
                .where(Score.account_id.in_({row.account_id for row in fields}), Score.as_of <= now.date())
                .group_by(Score.account_id)
            ).all()
        )
    stale = {}
    for row in fields:
        newest = latest.get(row.account_id)
        if newest is not None and date.fromisoformat(row.payload["fields"]["as_of"]) < newest:
            stale[row.id] = f"planned for {row.payload['fields']['as_of']}, older than the latest score ({newest})"
    if stale:
        with engine.begin() as conn:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == bindparam("rid"))
                .values(status="superseded", last_error=bindparam("error"), updated_at=now),
                [{"rid": rid, "error": error} for rid, error in stale.items()],
            )
        report.skipped += len(stale)
    return [row for row in rows if row.id not in stale]


def _mark_sending(engine: Engine, row_ids: list[int]) -> None:
    """Committed before a non-idempotent call: if the worker dies in the call, the sweeper will know."""
    with engine.begin() as conn:
        conn.execute(update(OutboxRow).where(OutboxRow.id.in_(row_ids)).values(status="sending"))


def _record(
    engine: Engine,
    rows: list,
    results: list[PushResult],
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    """Write every row's outcome in a few executemany statements (one per outcome), not a round trip per row."""
    attempts = {row.id: row.attempts + 1 for row in rows}
    action_keys = {row.id: row.payload.get("dedupe_key") for row in rows if row.operation != UPDATE_FIELDS}
    done, parked, retry = [], [], []
    for result in results:
        tries = attempts[result.row_id]
        if result.ok:
            done.append({"rid": result.row_id, "tries": tries, "ext": result.external_id})
        elif not result.retryable or tries >= max_attempts:
            parked.append({"rid": result.row_id, "tries": tries, "error": result.error})
            report.errors.append(result.error or "")
        else:
            retry.append({"rid": result.row_id, "tries": tries, "error": result.error, "at": now + backoff(tries)})
    report.delivered += len(done)
    report.parked += len(parked)
    report.retried += len(retry)
    outbox = OutboxRow.__table__
    row = outbox.c.id == bindparam("rid")
    common = {"attempts": bindparam("tries"), "updated_at": now}
    with engine.begin() as conn:
        if done:
            values = {**common, "status": "done", "external_id": bindparam("ext"), "last_error": None}
            conn.execute(update(outbox).where(row).values(**values), done)
            actions = [{"key": action_keys[d["rid"]], "ext": d["ext"]} for d in done if d["rid"] in action_keys]
            if actions:
                table = Action.__table__
                conn.execute(
                    update(table).where(table.c.dedupe_key == bindparam("key")).values(status="done",
                                                                                       external_id=bindparam("ext")),
                    actions,
                )  # fmt: skip
        if parked:
            conn.execute(update(outbox).where(row).values(**common, status="parked", last_error=bindparam("error")),
                         parked)  # fmt: skip
        if retry:
            values = {**common, "status": "pending", "last_error": bindparam("error"), "available_at": bindparam("at")}
            conn.execute(update(outbox).where(row).values(**values), retry)


def sweep(engine: Engine, job_alive: Callable[[str], bool], now: datetime | None = None,
          stale_after: timedelta = STALE_AFTER) -> int:  # fmt: skip
    """Hand out again the rows whose job was lost (killed worker, restarted Redis).

    `enqueued` rows go back to `pending`. A `sending` row was in a call that cannot be safely repeated (an
    in-app message): whether it reached the customer is unknown, so it is parked for an admin, never resent.
    """
    now = now or datetime.now()
    with engine.begin() as conn:
        stuck = conn.execute(
            select(OutboxRow.id, OutboxRow.job_id, OutboxRow.status).where(
                OutboxRow.status.in_(("enqueued", "sending")), OutboxRow.updated_at <= now - stale_after
            )
        ).all()
        lost = [(row_id, status) for row_id, job_id, status in stuck if not (job_id and job_alive(job_id))]
        reopen = [row_id for row_id, status in lost if status == "enqueued"]
        interrupted = [row_id for row_id, status in lost if status == "sending"]
        if reopen:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(reopen), OutboxRow.status == "enqueued")
                .values(status="pending", job_id=None, updated_at=now)
            )
        if interrupted:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(interrupted), OutboxRow.status == "sending")
                .values(status="parked", updated_at=now, last_error=INTERRUPTED)
            )
    return len(lost)
