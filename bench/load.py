"""Benchmark loading the demo's book into a fresh SQLite store, and the step that turns its keys into ids.

    python -m bench.load [--accounts 1000] [--days 365] [--runs 2]

Prints `load_book`'s wall and CPU time per run (what `cse demo` reports as its `load` phase), then the book's
account keys, contact e-mails and feature keys turned into ids both ways on the same frames: `Series.map` with a
dict (what the load did before 2026-12-05) and `app.store.load.lookup` (one hashed lookup), with their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import date

import pandas as pd

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.store.db import make_engine, upgrade_schema
from app.store.load import lookup


def _cpu_seconds(step: Callable[[], object]) -> float:
    started = time.process_time()
    step()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    book = generate_book(BookSpec(seed=7, active_accounts=args.accounts, days=args.days, as_of=date.today()))
    print(f"book: {len(book.accounts):,} accounts, {len(book.events):,} events")
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/cse.db")
            upgrade_schema(engine)
            wall, cpu = time.perf_counter(), time.process_time()
            load_book(engine, book.accounts, book.contacts, book.events)
            print(
                f"load_book, run {run}: {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU"
            )
            engine.dispose()

    ids = {key: i for i, key in enumerate(book.accounts["key"])}
    emails = {email: i for i, email in enumerate(book.contacts["email"])}
    features = {key: i for i, key in enumerate(book.events["feature"].dropna().unique())}
    columns = [(book.events["account_key"], ids), (book.events["contact_email"], emails),
               (book.events["feature"], features)]  # fmt: skip
    mapped = _cpu_seconds(lambda: [keys.map(table) for keys, table in columns])
    looked_up = _cpu_seconds(lambda: [lookup(keys, table) for keys, table in columns])
    same = all(pd.Series(keys.map(table), dtype="float64").equals(lookup(keys, table)) for keys, table in columns)
    print(f"keys to ids ({len(book.events):,} events x 3 columns): Series.map {mapped:.3f} s CPU, "
          f"lookup {looked_up:.3f} s CPU, ratio {mapped / looked_up:.1f}x; same ids: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
