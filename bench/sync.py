"""Benchmark the pull: API calls against the fewest the vendor's page sizes allow, and records per second.

    python -m bench.sync [--accounts 1000] [--days 90] [--events]

For each vendor, a sandbox is seeded from a demo book of N active accounts (only that vendor's share for the CRMs;
Intercom holds every company) and `cse sync`'s sources (the official SDKs, default mappings) pull it in full into
a temporary SQLite store, then once more incrementally with nothing changed. Printed per object: records pulled,
pages, API calls used, the minimum the vendor's page sizes allow for those records, their ratio (target ≤ 1.1,
issue 3), records per second inside the SDK pull (HTTP, JSON, paging) and through the whole sync (store included).

Minimums: Salesforce ⌈records / 2,000⌉ query pages per object; HubSpot ⌈live / 100⌉ list pages plus
⌈archived / 100⌉ for the archived pass (at least one call each); Intercom ⌈companies / 100⌉ scroll pages,
⌈records / 150⌉ search pages for contacts and conversations, and with --events one events listing per contact
(⌈its events / 100⌉ pages; Intercom has no bulk events read, so events cost a call per contact and are off by
default). What a connector spends beyond that (HubSpot's owner list,
the call that closes Intercom's scroll) shows in the ratio. Logins are not API calls and are not counted.
Everything runs over loopback; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from app.demo.book import Book, BookSpec, generate_book
from app.settings import Settings
from app.sources import build_sources
from app.store.db import make_engine, upgrade_schema
from app.sync import SyncLog, run_sync
from connectors.source import VendorSource
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.hubspot.schema import LIST_MAX_LIMIT as HUBSPOT_LIST_PAGE
from sandbox.intercom import start_sandbox as start_intercom
from sandbox.intercom.values import COMPANY_SCROLL_PAGE, EVENTS_MAX_PER_PAGE, SEARCH_MAX_PER_PAGE
from sandbox.salesforce import start_sandbox as start_salesforce
from sandbox.salesforce.org import DEFAULT_BATCH_SIZE as SALESFORCE_QUERY_PAGE

TARGET_RATIO = 1.1


def pages(records: int, size: int) -> int:
    """Calls a paged read needs: one per page, and one even when there is nothing to read."""
    return max(1, math.ceil(records / size))


class Timed:
    """A VendorSource that clocks the time spent inside the wrapped source's pull (the SDK calls, JSON, paging),
    apart from the store's, and keeps the records so minimums can be derived from them."""

    def __init__(self, source: VendorSource, objects: tuple[str, ...] | None = None) -> None:
        self.source, self.vendor, self.stats = source, source.vendor, source.stats
        self.only = objects
        self.seconds: dict[str, float] = {}
        self.records: dict[str, list[dict]] = {}

    def objects(self) -> tuple[str, ...]:
        offered = self.source.objects()
        return offered if self.only is None else tuple(o for o in offered if o in self.only)

    def pull(self, obj: str, since: datetime | None) -> Iterator[list[dict]]:
        pulled = self.source.pull(obj, since)
        kept = self.records.setdefault(obj, [])
        while True:
            started = time.perf_counter()
            try:
                page = next(pulled)
            except StopIteration:
                return
            finally:
                self.seconds[obj] = self.seconds.get(obj, 0.0) + time.perf_counter() - started
            kept.extend(page)
            yield page


@dataclass
class Vendor:
    """One seeded sandbox: the settings that reach it, and the fewest calls each object's records allow."""

    name: str
    env: dict[str, str]
    minimum: Callable[[str, Timed], int]
    objects: tuple[str, ...] | None = None  # None: every object the connector offers
    notes: list[str] = field(default_factory=list)


@contextmanager
def salesforce_vendor(book: Book) -> Iterator[Vendor]:
    with start_salesforce(book) as sandbox:
        counts = dict(sandbox.seeded.counts)

        def minimum(obj: str, timed: Timed) -> int:
            return pages(len(timed.records.get(obj, [])), SALESFORCE_QUERY_PAGE)

        yield Vendor("salesforce", sandbox.settings_env(), minimum, notes=[f"seeded {counts}"])


@contextmanager
def hubspot_vendor(book: Book) -> Iterator[Vendor]:
    with start_hubspot(book) as sandbox:
        state = sandbox.state

        def minimum(obj: str, timed: Timed) -> int:
            archived = sum(1 for r in timed.records.get(obj, []) if r.get("archived"))
            live = len(timed.records.get(obj, [])) - archived
            return pages(live, HUBSPOT_LIST_PAGE) + pages(archived, HUBSPOT_LIST_PAGE)

        seeded = {obj: len(records) for obj, records in state.records.items() if records}
        yield Vendor("hubspot", sandbox.settings_env(), minimum, notes=[f"seeded {seeded}"])


@contextmanager
def intercom_vendor(book: Book, events: bool) -> Iterator[Vendor]:
    with start_intercom(book) as sandbox:
        state = sandbox.state

        def minimum(obj: str, timed: Timed) -> int:
            records = timed.records.get(obj, [])
            if obj == "companies":
                return pages(len(records), COMPANY_SCROLL_PAGE)
            if obj == "events":  # one listing per contact, more pages for a contact with many events
                per_contact = Counter(event["contact"]["id"] for event in records)
                return sum(pages(per_contact[c], EVENTS_MAX_PER_PAGE) for c in state.workspace.contacts)
            return pages(len(records), SEARCH_MAX_PER_PAGE)

        env = sandbox.settings_env()
        workspace = state.workspace
        notes = [f"seeded {len(workspace.companies)} companies, {len(workspace.contacts)} contacts, "
                 f"{len(workspace.conversations)} conversations, {len(workspace.events)} data events"]  # fmt: skip
        objects = None if events else ("companies", "contacts", "conversations")
        if not events:
            notes.append("events left out (one call per contact): add --events to include them")
        yield Vendor("intercom", env, minimum, objects, notes)


def sync_once(vendor: Vendor, engine: Engine, log_dir: Path) -> tuple[SyncLog, Timed]:
    """One `cse sync --vendor X` run with fresh sources, as a new process would build them."""
    settings = Settings.from_env({**vendor.env, "CSE_DATA_DIR": str(log_dir)})
    timed = Timed(build_sources(settings, vendor.name, engine)[0], vendor.objects)
    return run_sync(engine, [timed], log_dir=log_dir), timed


def rate(records: int, seconds: float) -> str:
    return f"{records / seconds:,.0f}" if seconds > 0 else "-"


def report(vendor: Vendor, full: SyncLog, timed: Timed, rerun: SyncLog) -> float:
    """Print the vendor's table; returns its overall ratio."""
    print(f"\n== {vendor.name}: full sync in {full.duration_s:.2f} s ({'; '.join(vendor.notes)})")
    header = f"{'object':<14}{'records':>9}{'pages':>7}{'calls':>7}{'minimum':>9}{'ratio':>7}{'SDK rec/s':>12}"
    print(header + f"{'sync rec/s':>12}{'retries':>9}")
    used = least = 0
    for entry in full.objects:
        minimum = vendor.minimum(entry.object, timed)
        used, least = used + entry.api_calls, least + minimum
        sdk = rate(entry.records, timed.seconds.get(entry.object, 0.0))
        print(
            f"{entry.object:<14}{entry.records:>9,}{entry.pages:>7}{entry.api_calls:>7}{minimum:>9}"
            f"{entry.api_calls / minimum:>7.2f}{sdk:>12}{rate(entry.records, entry.duration_s):>12}"
        )
        if entry.error:
            print(f"  ERROR: {entry.error}")
    records = sum(o.records for o in full.objects)
    ratio = used / least
    verdict = "ok" if ratio <= TARGET_RATIO else f"above the {TARGET_RATIO} target"
    sdk_seconds = sum(timed.seconds.values())
    print(
        f"{'total':<14}{records:>9,}{sum(o.pages for o in full.objects):>7}{used:>7}{least:>9}{ratio:>7.2f}"
        f"{rate(records, sdk_seconds):>12}{rate(records, full.duration_s):>12}{timed.stats.retries:>9}  ({verdict})"
    )
    reread = sum(o.records for o in rerun.objects)
    by_object = ", ".join(f"{o.object} {o.api_calls}" for o in rerun.objects)
    print(
        f"incremental rerun, nothing changed: {sum(rerun.api_calls.values())} API calls ({by_object}), "
        f"{reread:,} records re-read (changed within the overlap window), {rerun.duration_s:.2f} s"
    )
    return ratio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000, help="active accounts in the book (default 1,000)")
    parser.add_argument("--days", type=int, default=90, help="days of activity in the book (default 90)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", action="store_true", help="also pull Intercom data events (a call per contact)")
    args = parser.parse_args(argv)

    # The book ends yesterday, so its events are inside the 90 days Intercom lists.
    spec = BookSpec(seed=args.seed, active_accounts=args.accounts, days=args.days,
                    as_of=date.today() - timedelta(days=1))  # fmt: skip
    started = time.perf_counter()
    book = generate_book(spec)
    crms = book.accounts["crm"].value_counts().to_dict()
    print(f"book: {len(book.accounts):,} accounts ({args.accounts:,} active; by CRM {crms}), "
          f"{len(book.contacts):,} contacts, {len(book.events):,} events over {args.days} days "
          f"(generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip

    ratios: dict[str, float] = {}
    vendors: list[Callable[[], Any]] = [
        lambda: salesforce_vendor(book),
        lambda: hubspot_vendor(book),
        lambda: intercom_vendor(book, args.events),
    ]
    with tempfile.TemporaryDirectory(prefix="cse-bench-sync-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade_schema(engine)
        for open_vendor in vendors:
            with open_vendor() as vendor:
                full, timed = sync_once(vendor, engine, Path(folder))
                rerun, _ = sync_once(vendor, engine, Path(folder))
                ratios[vendor.name] = report(vendor, full, timed, rerun)
        engine.dispose()
    summary = ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items())
    print(f"\nAPI calls / minimum: {summary} (target ≤ {TARGET_RATIO})")


if __name__ == "__main__":
    main()
