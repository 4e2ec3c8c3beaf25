"""Webhook events after they are stored: processed later as one coalesced rescoring.

The web request only verifies, stores (app/webhook_events/store.py) and schedules, so it answers in milliseconds; the
processing job pulls fresh data for the vendors involved, rescores every account the waiting events touch once, and
dispatches the write-back. Events wait in the database with status `received` until a processing run takes them,
so a Redis outage delays them and loses none (the scheduler picks them up every minute).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from app.store.models import ExternalId, RecordLink, WebhookEvent
from app.webhook_events.claims import Claim, RetryPolicy, claim_events, due
from connectors.registry import connector

log = logging.getLogger(__name__)
COALESCE_KEY = "cse:webhooks:processing-scheduled"
# Vendors whose events another processor takes (Segment usage: app/history/segment.py), not the CRM pull.
OWN_PROCESSORS = ("segment",)
CRM_EVENTS = WebhookEvent.__table__.c.vendor.not_in(OWN_PROCESSORS)
# If a scheduled run never starts (its worker died), the key expires so later events schedule a new one.
COALESCE_TTL_SECONDS = 120


def _record_keys(row) -> list[tuple[str, str]]:
    """(vendor object, record id) of what one event names: its record (by the object name our mappings use),
    the company records its references point to, and the companies it lists (`company_ids`).

    The names come from the vendor's record in connectors/registry.py; an event of a vendor no longer
    registered names its record as the webhook did."""
    try:
        record = connector(row.vendor)
        names, references, company = record.webhook_objects, record.references, record.company_object
    except LookupError:
        names, references, company = {}, {}, None
    refs = row.refs or {}
    keys = [(names.get(row.object, row.object), row.object_id)] if row.object_id else []
    keys += [(references[k], v) for k, v in refs.items() if k in references and v]
    keys += [(company, c) for c in refs.get("company_ids") or [] if company]
    return keys


def _also_fetch(vendor: str, obj: str) -> tuple[str, ...]:
    try:
        return connector(vendor).also_fetch.get(obj, ())
    except LookupError:
        return ()


def wanted_records(rows) -> dict[str, dict[str, list[str]]]:
    """vendor → object → record ids the waiting events name (and their companies, and a person's events)."""
    wanted: dict[str, dict[str, set[str]]] = {}
    for row in rows:
        objects = wanted.setdefault(row.vendor, {})
        for obj, record_id in _record_keys(row):
            objects.setdefault(obj, set()).add(record_id)
        if row.object_id:
            obj = _record_keys(row)[0][0]
            for extra in _also_fetch(row.vendor, obj):
                objects.setdefault(extra, set()).add(row.object_id)
    return {v: {o: sorted(ids) for o, ids in objects.items()} for v, objects in wanted.items()}


def _accounts_for(engine: Engine, rows) -> dict[int, list[int]]:
    """Event row id → account ids, through the company links and the record links the sync keeps."""
    found: dict[int, list[int]] = {}
    with engine.connect() as conn:
        for row in rows:
            ids: set[int] = set()
            for obj, external_id in _record_keys(row):
                for table in (ExternalId, RecordLink):
                    ids.update(
                        conn.execute(
                            select(table.account_id).where(
                                table.vendor == row.vendor, table.object == obj, table.external_id == external_id
                            )
                        ).scalars()
                    )
            found[row.id] = sorted(ids)
    return found


@dataclass
class ProcessResult:
    events: int = 0
    accounts: list[int] = field(default_factory=list)
    unresolved: int = 0
    completed: int = 0  # events this run settled as processed (0 for any another run took over)
    retrying: int = 0  # events whose pull or rescoring failed, back to `received` after a backoff
    failed: int = 0  # events that used up their attempts


def _pull_isolated(pull: Callable, rows, probe_limit: int) -> dict[int, str]:
    """Pull what the events name in one go; if that fails, vendor by vendor, and a vendor's failed pull event by
    event (up to `probe_limit` of them), so one bad event or one vendor down fails alone. Returns event row id →
    error for the events not pulled."""
    first = _try(pull, rows)
    if first is None:
        return {}
    if len(rows) == 1:
        return {rows[0].id: first}
    errors: dict[int, str] = {}
    by_vendor: dict[str, list] = {}
    for row in rows:
        by_vendor.setdefault(row.vendor, []).append(row)
    for group in by_vendor.values():
        error = _try(pull, group) if len(by_vendor) > 1 else "the batch's pull failed"
        if error is None:
            continue
        for index, row in enumerate(group):
            alone = _try(pull, [row]) if index < probe_limit and len(group) > 1 else error
            if alone is not None:
                errors[row.id] = alone
    return errors


def _try(pull: Callable, rows) -> str | None:
    try:
        pull(wanted_records(rows))
    except Exception as error:  # noqa: BLE001 - any vendor or mapping failure: the events are retried
        log.warning("pulling for webhook events %s failed", [r.id for r in rows], exc_info=True)
        return f"{type(error).__name__}: {error}"[:2000]
    return None


def process_received(
    engine: Engine,
    pull: Callable[[dict[str, dict[str, list[str]]]], None],
    rescore_accounts: Callable[[list[int]], None],
    limit: int = 10_000,
    policy: RetryPolicy | None = None,
    probe_limit: int = 50,
) -> ProcessResult:
    """Take the waiting events: pull fresh data for the records they name, rescore each touched account once.

    The events are claimed first (app/webhook_events/claims.py: the attempt counted, the lease renewed while the
    run lives), so two runs never take the same event, and only the run holding an event settles it: a run whose
    lease lapsed (it froze) finds its events settled by another and changes nothing. An event whose pull fails
    (per vendor, then alone) goes back to `received` with a backoff and the error as its reason, and to `failed`
    after the policy's attempts; the others go on. Events whose runs kept dying are taken one by one first.
    """
    policy = policy or RetryPolicy()
    result = ProcessResult()
    while True:
        claim = claim_events(engine, policy, limit, CRM_EVENTS)
        result.failed += claim.exhausted
        if claim.rows:
            _process(engine, claim, pull, rescore_accounts, policy, probe_limit, result)
        if not claim.isolated:
            return result


def _process(engine: Engine, claim: Claim, pull: Callable, rescore_accounts: Callable, policy: RetryPolicy,
             probe_limit: int, result: ProcessResult) -> None:  # fmt: skip
    rows = claim.rows
    result.events += len(rows)
    with claim.held(engine, policy.lease):
        errors = _pull_isolated(pull, rows, probe_limit)
        pulled = [row for row in rows if row.id not in errors]
        accounts = _accounts_for(engine, pulled)
        touched = sorted({a for ids in accounts.values() for a in ids})
        if touched:
            try:
                rescore_accounts(touched)
            except Exception as error:  # noqa: BLE001 - the whole rescoring failed: every pulled event retries
                log.warning("rescoring for webhook events failed", exc_info=True)
                errors.update({row.id: f"rescoring: {type(error).__name__}: {error}"[:2000] for row in pulled})
                pulled, touched = [], []
    result.accounts = sorted(set(result.accounts) | set(touched))
    result.unresolved += sum(1 for row in pulled if not accounts[row.id])
    _settle(engine, claim, pulled, accounts, errors, policy, result)


def _settle(engine, claim: Claim, pulled, accounts, errors, policy: RetryPolicy, result: ProcessResult) -> None:
    """Mark this run's events processed or due again; rows no longer under this run's claim are left alone."""
    table = WebhookEvent.__table__
    now = datetime.now()
    completed: list[int] = []
    with engine.begin() as conn:
        for row in pulled:
            reason = None if accounts[row.id] else "no account in the store matches this record"
            done = conn.execute(update(table).where(table.c.id == row.id, claim.mine).values(
                status="processed", processed_at=now, account_ids=accounts[row.id], reason=reason, claim=None,
                next_attempt_at=None))  # fmt: skip
            completed += [row.id] * done.rowcount
        for row in claim.rows:
            if row.id not in errors:
                continue
            settled = {"status": "failed", "next_attempt_at": None} if row.attempts >= policy.max_attempts else {
                "status": "received", "next_attempt_at": now + policy.delay(row.attempts)}  # fmt: skip
            done = conn.execute(update(table).where(table.c.id == row.id, claim.mine).values(
                reason=errors[row.id], processed_at=now, claim=None, **settled))  # fmt: skip
            if done.rowcount:
                result.failed += settled["status"] == "failed"
                result.retrying += settled["status"] == "received"
    result.completed += len(completed)
    if completed:  # after the commit: the log names exactly the events this run settled
        log.info("webhook events processed: %s", ",".join(map(str, completed)))


class InProcessCoalescer:
    """The embedded mode's stand-in for the queue: one run for a burst of events, runs one at a time.

    A run scheduled but not yet started takes every event received until it starts; an event that arrives
    during a run schedules the next one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._pending = False

    def schedule(self, delay: float, run: Callable[[], object]) -> bool:
        with self._lock:
            if self._pending:
                return False
            self._pending = True
        timer = threading.Timer(delay, self._run, args=(run,))
        timer.daemon = True
        timer.start()
        return True

    def _run(self, run: Callable[[], object]) -> None:
        with self._running:
            with self._lock:
                self._pending = False
            try:
                run()
            except Exception:  # noqa: BLE001 - the events stay claimable; the next run retries them
                log.exception("processing webhook events failed")


class RecentlyScheduled:
    """Per web process: skip the Redis round trip when this process scheduled a run a moment ago.

    Under load that saves a call per request; the gap it opens (a run that started just before an event came in)
    is closed by the run itself, which schedules another when it finishes with events still waiting.
    """

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self._at = float("-inf")

    def fresh(self) -> bool:
        return time.monotonic() - self._at < self.seconds

    def mark(self) -> None:
        self._at = time.monotonic()


def schedule_processing_on_redis(
    connection, queue, delay_seconds: float, job: Callable | str, recent: RecentlyScheduled | None = None
) -> bool:
    """Enqueue one processing job unless one is already waiting (SET NX coalesces a burst into one run).

    The waiting job takes every event received before it starts, so events that arrive while it waits in the
    queue ride along; `delay_seconds` > 0 widens that window on purpose, at the cost of latency.
    """
    if recent is not None and recent.fresh():
        return False
    scheduled = connection.set(COALESCE_KEY, "1", nx=True, ex=COALESCE_TTL_SECONDS + int(delay_seconds))
    if recent is not None:
        recent.mark()  # a run is waiting now, whether this call or another process scheduled it
    if not scheduled:
        return False
    job_id = f"process-webhooks-{uuid.uuid4().hex[:12]}"
    if delay_seconds > 0:
        queue.enqueue_in(timedelta(seconds=delay_seconds), job, job_id=job_id)
    else:
        queue.enqueue(job, job_id=job_id)
    return True


def received_waiting(engine: Engine) -> bool:
    """Events still waiting and due after a run: they arrived while it ran, and need the next one (events waiting
    out a retry backoff are left to the scheduler's sweep)."""
    with engine.connect() as conn:
        return conn.execute(select(WebhookEvent.id).where(due(datetime.now())).limit(1)).first() is not None


def release_coalescing(connection) -> None:
    """Called as a processing run starts, so events that arrive during the run schedule the next one."""
    connection.delete(COALESCE_KEY)
