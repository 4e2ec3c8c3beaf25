"""Benchmark the health engine alone and `cse score` end to end; prints accounts per second and peak memory.

    python -m bench.score                       # engine; 100,000 on SQLite and PostgreSQL; 1,000,000 on PostgreSQL
    python -m bench.score --accounts 100000 --big-accounts 1000000 --shards 2 --postgres-url postgresql+psycopg://...
    python -m bench.score --skip-big            # without the million-account store (it takes minutes to fill)
    python -m bench.score --skip-sqlite --accounts 100000 --big-accounts 200000   # PostgreSQL only, smaller

Targets (issue 2): engine ≥ 1,000,000 accounts/s; end to end ≤ 20 s for 100,000 accounts; peak memory < 1.5 GB.
Issue 15: 1,000,000 accounts x 60 days on PostgreSQL in one process ≤ 60 s and ≤ 1.5 GB peak RSS; with --shards 2
and two `cse worker` processes the speed-up over one process. The 100,000-account runs are timed twice on the same
store, chunked and with the whole book in one chunk (the path before issue 15), and the ratio printed.
The end-to-end store is filled with synthetic accounts and 60 days of daily rollups (what `cse score` reads), then
`cse score` runs as a separate process so its own wall time and peak RSS are measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from app.store.bulk import copy_rows
from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, AccountDay, Feature
from engine.canonical import METRIC_COLUMNS
from engine.health import score_health
from engine.health_config import load_health_config

AS_OF = date(2026, 11, 1)
HISTORY_DAYS = 60


def synthetic_metrics(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.random(n) for name in METRIC_COLUMNS})
    frame["ttfv_days"] *= 120
    frame["tenure_days"] *= 900
    frame["active_days_per_week"] *= 7
    frame["avg_session_minutes"] *= 60
    frame["roi_pct"] *= 400
    frame["escalations_90d"] = rng.poisson(0.3, n)
    frame["has_champion"] = rng.integers(0, 2, n)
    frame["seat_growth_90d"] = rng.normal(0, 0.2, n)
    frame["plan_change_90d"] = rng.integers(-1, 2, n)
    frame.loc[rng.random(n) < 0.2, "roi_pct"] = np.nan  # some accounts without outcome data
    return frame


def bench_engine(n: int) -> None:
    config = load_health_config()
    metrics = synthetic_metrics(n)
    score_health(metrics.head(1000), config)  # warm-up
    start = time.perf_counter()
    scored = score_health(metrics, config)
    elapsed = time.perf_counter() - start
    tracemalloc.start()  # a second, traced run: tracing slows allocation, so it is kept out of the timing
    score_health(metrics, config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bands = scored["band"].value_counts().to_dict()
    print(
        f"engine: {n:,} accounts in {elapsed:.3f} s = {n / elapsed:,.0f} accounts/s "
        f"(peak allocation while scoring {peak / 2**20:,.0f} MiB; bands {bands})"
    )


FILL_BLOCK = 50_000  # accounts generated and written at a time, so filling a million-account store fits in memory


def fill_store(database_url: str, n: int, seed: int = 2) -> None:
    """Synthetic accounts plus daily rollups for HISTORY_DAYS, written with the store's own bulk path."""
    config = load_health_config()
    engine = make_engine(database_url)
    upgrade_schema(engine)
    masks = np.array([1 << b for b in range(len(config.features))], dtype=np.int64)
    features = pd.DataFrame({"key": list(config.features), "bit": range(len(masks)), "mask": masks})
    rows = 0
    with engine.begin() as conn:
        copy_frame(conn, Feature.__table__, features)
    for first in range(0, n, FILL_BLOCK):
        accounts, rollups = synthetic_block(np.random.default_rng([seed, first]), first, min(FILL_BLOCK, n - first),
                                            masks)  # fmt: skip
        with engine.begin() as conn:
            copy_frame(conn, Account.__table__, accounts)
            copy_frame(conn, AccountDay.__table__, rollups)
        rows += len(rollups)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    print(f"  store filled: {n:,} accounts, {rows:,} daily rollup rows")


def copy_frame(conn, table, frame: pd.DataFrame) -> None:
    """COPY … FROM STDIN (CSV) on PostgreSQL, the store's bulk path elsewhere."""
    if conn.dialect.name != "postgresql":
        copy_rows(conn, table, list(frame.columns), list(frame.itertuples(index=False, name=None)))
        return
    raw = conn.connection.driver_connection
    columns = ", ".join(frame.columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(frame.to_csv(index=False, header=False))


def synthetic_block(rng: np.random.Generator, first: int, n: int, masks: np.ndarray) -> tuple[pd.DataFrame, ...]:
    """Accounts first+1 … first+n and their rollups."""
    accounts = pd.DataFrame(
        {
            "id": np.arange(first + 1, first + n + 1),
            "key": [f"B{i:07d}" for i in range(first, first + n)],
            "name": [f"Bench {i}" for i in range(first, first + n)],
            "segment": "smb",
            "arr": rng.gamma(2.0, 1200.0, n).round(2),
            "seats_purchased": rng.integers(3, 60, n),
            "api_limit": 10000,
            "api_used": rng.integers(0, 12000, n),
            "storage_limit_gb": 100.0,
            "storage_used_gb": rng.random(n) * 110,
            "customer_since": [AS_OF - timedelta(days=int(d)) for d in rng.integers(100, 1500, n)],
            "status": "active",
            "roi_pct": np.where(rng.random(n) < 0.7, rng.gamma(2.0, 90.0, n), np.nan),
            "goal_attainment": rng.random(n),
            "first_activity_at": AS_OF - timedelta(days=HISTORY_DAYS),
            "first_value_at": AS_OF - timedelta(days=90),
        }
    )
    accounts["seats_active"] = (accounts["seats_purchased"] * rng.uniform(0.3, 1.0, n)).astype(int)
    engagement = rng.beta(2, 2, n)
    days = np.array([AS_OF - timedelta(days=d) for d in range(HISTORY_DAYS)], dtype=object)
    active = rng.random((n, HISTORY_DAYS)) < engagement[:, None]
    account_idx, day_idx = np.nonzero(active)
    used = rng.random((len(account_idx), len(masks))) < (0.15 + 0.6 * engagement[account_idx, None])
    rollups = pd.DataFrame(
        {
            "account_id": account_idx + first + 1,
            "day": days[day_idx],
            "logins": rng.integers(1, 20, len(account_idx)),
            "session_minutes": rng.gamma(2.0, 60.0, len(account_idx)),
            "feature_uses": used.sum(axis=1),
            "features_mask": (used * masks).sum(axis=1),
            "tickets_opened": rng.poisson(0.05, len(account_idx)),
        }
    )
    for column in ("api_calls", "tickets_closed", "escalations", "self_service", "outreach", "replies", "meetings",
                   "survey_count", "churn_signals"):  # fmt: skip
        rollups[column] = 0
    for column in ("resolution_hours", "seat_delta", "plan_delta", "survey_sum"):
        rollups[column] = 0.0
    return accounts, rollups


def fill_store_in_child(database_url: str, n: int) -> None:
    """Fill in a spawned process: a child forked from a big parent would report the parent's pages as its peak."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=fill_store, args=(database_url, n))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"filling the store failed ({process.exitcode})")


def run_cse_score(database_url: str, label: str, n: int, extra_env: dict | None = None,
                  args: tuple[str, ...] = ()) -> tuple[float, float]:  # fmt: skip
    """Run `cse score` as a child; prints and returns its wall time and CPU time (user + sys; on a loaded machine
    the fairer figure), with its own peak RSS."""
    env = {**os.environ, "DATABASE_URL": database_url, **(extra_env or {})}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "score", "--json", "--as-of", AS_OF.isoformat(), *args], env=env, stdout=out
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, not the max over all children
        elapsed = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"cse score failed with status {status}")
        out.seek(0)
        scored = json.load(out)["accounts"]
    peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    print(f"cse score [{label}]: {scored:,} accounts in {elapsed:.1f} s = {n / elapsed:,.0f} accounts/s, "
          f"CPU {cpu:.1f} s (user {usage.ru_utime:.1f}, sys {usage.ru_stime:.1f}), "
          f"peak RSS {peak_kib / 1024:,.0f} MiB, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    return elapsed, cpu


def forget_scores(database_url: str) -> None:
    """Delete the scores a run as of AS_OF stored, so the next run does the same work (a rerun of a day finds its
    scores and writes none, which would flatter whichever path runs second)."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM scores WHERE as_of = :day"), {"day": AS_OF})
    engine.dispose()


def run_sharded(database_url: str, n: int, shards: int) -> float:
    """`cse score --shards N` with N `cse worker` processes on a throwaway Redis; prints the workers' peak RSS."""
    from sandbox.redis_server import throwaway_redis

    with throwaway_redis() as redis_url:
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        command = [sys.executable, "-m", "app", "worker", "score"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        workers = [subprocess.Popen(command, env=env, **quiet) for _ in range(shards)]
        time.sleep(3)  # the workers import the scoring stack before the clock starts
        try:
            elapsed, _ = run_cse_score(database_url, f"postgresql, --shards {shards} (coordinator)", n,
                                       {"REDIS_URL": redis_url}, ("--shards", str(shards)))  # fmt: skip
        finally:
            peaks = []
            for worker in workers:
                worker.terminate()
                peaks.append(os.wait4(worker.pid, 0)[2].ru_maxrss / 1024)
    print(f"  workers' peak RSS: {', '.join(f'{p:,.0f} MiB' for p in peaks)}")
    return elapsed


def postgres_schema(postgres_url: str):
    """A throwaway schema: (url pointing at it, a function that drops it)."""
    schema = f"cse_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    return f"{postgres_url}?options=-csearch_path%3D{schema}", drop


# Today's path (issue 2): the whole book in one chunk. Same results; memory grows with the book.
BOOK_AT_ONCE = {"CSE_SCORE_CHUNK_ACCOUNTS": str(10**9)}


def compare(database_url: str, label: str, n: int) -> tuple[float, float]:
    """Chunked scoring and the book-at-once path on the same store, each from the same state, and their ratios;
    returns the book-at-once run's wall and CPU time."""
    before = run_cse_score(database_url, f"{label}, book at once (before)", n, BOOK_AT_ONCE)
    forget_scores(database_url)
    after = run_cse_score(database_url, f"{label}, chunked", n)
    print(f"  {label}: chunked / book at once: wall time {after[0] / before[0]:.2f}, CPU time "
          f"{after[1] / before[1]:.2f}")  # fmt: skip
    return before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine-accounts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--big-accounts", type=int, default=1_000_000, help="PostgreSQL, one process and sharded")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test"))  # fmt: skip
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            fill_store_in_child(url, args.accounts)
            compare(url, "sqlite", args.accounts)
    whole_book = None
    if not args.skip_postgres:
        url, drop = postgres_schema(args.postgres_url)
        try:
            fill_store_in_child(url, args.accounts)
            whole_book = compare(url, "postgresql", args.accounts)
        finally:
            drop()
    if not args.skip_postgres and not args.skip_big:
        url, drop = postgres_schema(args.postgres_url)
        n = args.big_accounts
        try:
            fill_store_in_child(url, n)
            one, cpu = run_cse_score(url, "postgresql, one process, chunked", n)
            print(f"  target: {n:,} accounts <= 60 s and <= 1536 MiB")
            if whole_book is not None:
                per_account = (one / n) / (whole_book[0] / args.accounts), (cpu / n) / (whole_book[1] / args.accounts)
                print(f"  time per account vs the {args.accounts:,}-account book at once, this run: wall "
                      f"{per_account[0]:.2f}, CPU {per_account[1]:.2f}")  # fmt: skip
            if args.shards > 1:
                forget_scores(url)
                sharded = run_sharded(url, n, args.shards)
                print(f"  --shards {args.shards}: speed-up {one / sharded:.2f}x over one process")
        finally:
            drop()
    bench_engine(args.engine_accounts)  # last: its arrays would otherwise sit in every child's peak


if __name__ == "__main__":
    main()
