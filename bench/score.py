"""Benchmark the health engine alone and `cse score` end to end; prints accounts per second and peak memory.

    python -m bench.score                       # engine over 1,000,000 accounts; end to end on SQLite and PostgreSQL
    python -m bench.score --accounts 100000 --engine-accounts 1000000 --postgres-url postgresql+psycopg://...

Targets (issue 2): engine ≥ 1,000,000 accounts/s; end to end ≤ 20 s for 100,000 accounts; peak memory < 1.5 GB.
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


def fill_store(database_url: str, n: int, seed: int = 2) -> None:
    """Synthetic accounts plus daily rollups for HISTORY_DAYS, written with the store's own bulk path."""
    rng = np.random.default_rng(seed)
    config = load_health_config()
    engine = make_engine(database_url)
    upgrade_schema(engine)
    accounts = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "key": [f"B{i:07d}" for i in range(n)],
            "name": [f"Bench {i}" for i in range(n)],
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
    masks = np.array([1 << b for b in range(len(config.features))], dtype=np.int64)
    used = rng.random((len(account_idx), len(masks))) < (0.15 + 0.6 * engagement[account_idx, None])
    rollups = pd.DataFrame(
        {
            "account_id": account_idx + 1,
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
    features = pd.DataFrame({"key": list(config.features), "bit": range(len(masks)), "mask": masks})
    with engine.begin() as conn:
        for table, frame in ((Account.__table__, accounts), (Feature.__table__, features),
                             (AccountDay.__table__, rollups)):  # fmt: skip
            columns = list(frame.columns)
            copy_rows(conn, table, columns, list(frame.itertuples(index=False, name=None)))
    engine.dispose()
    print(f"  store filled: {n:,} accounts, {len(rollups):,} daily rollup rows")


def fill_store_in_child(database_url: str, n: int) -> None:
    """Fill in a spawned process: a child forked from a big parent would report the parent's pages as its peak."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=fill_store, args=(database_url, n))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"filling the store failed ({process.exitcode})")


def run_cse_score(database_url: str, label: str, n: int) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "score", "--json", "--as-of", AS_OF.isoformat()], env=env, stdout=out
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, not the max over all children
        elapsed = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"cse score failed with status {status}")
        out.seek(0)
        scored = json.load(out)["accounts"]
    peak_kib = usage.ru_maxrss
    print(f"cse score [{label}]: {scored:,} accounts in {elapsed:.1f} s = {n / elapsed:,.0f} accounts/s, "
          f"peak RSS {peak_kib / 1024:,.0f} MiB (target ≤ 20 s, < 1536 MiB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine-accounts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test"))  # fmt: skip
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        fill_store_in_child(url, args.accounts)
        run_cse_score(url, "sqlite", args.accounts)
    if not args.skip_postgres:
        schema = f"cse_bench_{os.getpid()}"
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.postgres_url}?options=-csearch_path%3D{schema}"
        try:
            fill_store_in_child(url, args.accounts)
            run_cse_score(url, "postgresql", args.accounts)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    bench_engine(args.engine_accounts)  # last: its arrays would otherwise sit in every child's peak


if __name__ == "__main__":
    main()
