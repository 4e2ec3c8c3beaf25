"""The demo's CRM half: the book's companies in the bundled sandboxes, linked by a sync, scores written back.

`cse demo` runs the whole loop on one machine: the three vendor sandboxes hold the generated book's records, a
sync links their company records to the store's accounts (identity resolution by domain), and after scoring the
write-back lands fields, tasks and in-app messages in the sandboxes through the official SDKs.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import Engine, func, select

from app.ml.workers import process_context
from app.queues import redis_connection
from app.settings import Settings
from app.sources import build_sources
from app.store.models import ExternalId, OutboxRow
from app.sync import active_mapping, run_sync
from app.sync.versions import load_active_mappings, mappings_dir_of
from app.writeback.jobs import enqueue_deliveries, pusher_for
from connectors.registry import all_connectors, connector, vendor_names
from connectors.source import PullStats, VendorSource


@dataclass
class CompaniesOnly:
    """A source limited to its company object: the demo's usage and CRM history come from the book itself."""

    source: VendorSource
    vendor: str = field(init=False)
    stats: PullStats = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = self.source.vendor
        self.stats = self.source.stats

    def objects(self) -> tuple[str, ...]:
        return tuple(o for o in self.source.objects() if o == connector(self.vendor).company_object)

    def pull(self, obj: str, since: datetime | None):
        return self.source.pull(obj, since)


def _records_only(book):
    """The book without its activity: the demo's sandboxes hold its companies, owners and contacts only.

    The demo pulls nothing but companies from them (`CompaniesOnly`: usage and CRM history are loaded into the
    store from the book itself) and writes fields, tasks and messages onto those records, so seeding a year of
    tickets, tasks, deals and product events into them would be work nobody reads. Tests and benches that need
    a sandbox with history start it from the full book.
    """
    return replace(book, events=book.events.iloc[:0])


@contextmanager
def bundled_crms(book) -> Iterator[dict[str, str]]:
    """Start every registered vendor's sandbox seeded with `book`'s records (not its activity); yields the
    settings that point the connectors at them.

    They run in a process of their own (`_serve_sandboxes`): seeding them and answering the sync's and the
    write-back's calls is Python work that, in this process, took turns with the load, the link and the
    write-back's client side for the one interpreter lock, while the second core idled. The settings are also put
    into this process's environment while the sandboxes run, because jobs (run in-process by the demo) build their
    connections from the environment like any worker does.
    """
    context = process_context()  # a clean process, as app.ml.workers explains
    here, there = context.Pipe()
    process = context.Process(target=_serve_sandboxes, args=(_records_only(book), there), name="sandboxes")
    process.start()
    there.close()
    try:
        env = here.recv()
        if isinstance(env, BaseException):
            raise RuntimeError("the CRM sandboxes did not start") from env
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            _restore(saved)
    finally:
        here.close()  # the sandboxes' process stops when its end of the pipe closes
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


def _serve_sandboxes(records, pipe: Connection) -> None:
    """The sandboxes' process: start and seed each one, send their settings, serve until the pipe closes."""
    with ExitStack() as stack:
        env: dict[str, str] = {}
        try:
            for record in all_connectors():
                if record.sandbox is not None:
                    env.update(stack.enter_context(record.start_sandbox(records)).settings_env())
        except Exception as error:  # noqa: BLE001 - sent to the demo, which raises it
            pipe.send(error)
            return
        pipe.send(env)
        with suppress(EOFError, KeyboardInterrupt):  # the demo closed its end, or Ctrl-C reached the whole group
            pipe.recv()


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def crm_settings(sandbox_env: dict[str, str]) -> Settings:
    """The process's settings (store, Redis) with the vendor connections pointed at the sandboxes."""
    return Settings.from_env({**os.environ, **sandbox_env})


def link_companies(engine: Engine, settings: Settings, log_dir: Path) -> dict[str, int]:
    """Sync each CRM's companies into the store and install our fields; returns linked companies per vendor."""
    mappings = load_active_mappings(settings, engine, list(vendor_names()))
    sources = [CompaniesOnly(source) for source in build_sources(settings, None, engine, mappings)]
    log = run_sync(engine, sources, log_dir=log_dir, mappings_dir=mappings_dir_of(settings), mappings=mappings)
    with engine.connect() as conn:
        for record in all_connectors():
            fields = record.fields_module()
            if record.configured(settings) and hasattr(fields, "install_fields"):
                push_mapping = active_mapping(conn, record.name, record.push_mapping, mappings_dir_of(settings))
                fields.install_fields(pusher_for(settings, record.name).client, push_mapping)
    return {entry.vendor: entry.accounts for entry in log.objects}


def linked_companies(engine: Engine) -> dict[str, int]:
    """Accounts linked to a company record per vendor: the whole store's links, not only this run's pull."""
    with engine.connect() as conn:
        counts = {
            vendor: conn.scalar(
                select(func.count(func.distinct(ExternalId.account_id))).where(
                    ExternalId.vendor == vendor, ExternalId.object == connector(vendor).company_object
                )
            )
            for vendor in vendor_names()
        }
    return {vendor: count for vendor, count in counts.items() if count}


def _rq_logs_to_stderr() -> None:
    """RQ logs to stdout unless its loggers have a handler: give them stderr, so `cse demo --json` stays JSON."""
    for name in ("rq.worker", "rq.job"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.StreamHandler(sys.stderr))


def deliver_everything(engine: Engine, settings: Settings) -> dict[str, dict[str, int]]:
    """Run the write-back to completion, the vendors side by side: each on its own thread with its own queue,
    pusher and (when REDIS_URL is set) in-process RQ worker, so one CRM's calls never wait for another's.

    The demo's jobs go to queues of its own (a per-run prefix), so a `cse worker` already running on the same
    Redis, which knows neither the sandboxes nor this store, never takes them; RQ logs to stderr.
    """
    prefix = f"demo-{uuid.uuid4().hex[:12]}-"
    if settings.redis_url:
        _rq_logs_to_stderr()
    with ThreadPoolExecutor(max_workers=len(vendor_names()), thread_name_prefix="deliver") as pool:
        for done in [pool.submit(_deliver_vendor, engine, settings, vendor, prefix) for vendor in vendor_names()]:
            done.result()
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxRow.vendor, OutboxRow.operation, OutboxRow.status, func.count()).group_by(
                OutboxRow.vendor, OutboxRow.operation, OutboxRow.status
            )
        ).all()
    summary: dict[str, dict[str, int]] = {}
    for vendor, operation, status, count in rows:
        summary.setdefault(vendor, {})[f"{operation}:{status}"] = count
    return summary


def _deliver_vendor(engine: Engine, settings: Settings, vendor: str, prefix: str) -> None:
    """One vendor's pending rows, through its queue: RQ and a burst worker on this thread, or inline."""
    if not settings.redis_url:
        enqueue_deliveries(settings, engine, [vendor])
        return
    connection = redis_connection(settings)
    enqueue_deliveries(settings, engine, [vendor], connection=connection, queue_prefix=prefix)
    _thread_worker([prefix + connector(vendor).writeback_queue], connection).work(burst=True, logging_level="WARNING")


def _thread_worker(queues: list[str], connection):
    """An RQ worker that can run on a thread other than the main one: job timeouts by timer instead of SIGALRM,
    and no SIGINT/SIGTERM handlers (only the main thread may install them; Ctrl-C still stops the demo)."""
    from rq import SimpleWorker
    from rq.timeouts import TimerDeathPenalty

    class ThreadWorker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self) -> None:
            pass

    return ThreadWorker(queues, connection=connection)
