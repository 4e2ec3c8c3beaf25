"""Benchmark write-back: API calls against the vendor minimum, records per second with 1 and 2 RQ workers, and
the share of records a steady-state rescoring writes.

    python -m bench.writeback [--accounts 10000]

Targets (issue 4): calls ≤ 1.05 × ⌈N/200⌉ (Salesforce) and ⌈N/100⌉ (HubSpot); a rescoring in which 5 % of the
scores moved writes 5 % of the records, not 100 %. The vendors are the sandboxes over loopback, the queue a
throwaway Redis, the workers real `cse worker --burst` processes, the store SQLite.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.store.load import load_accounts
from app.store.models import ExternalId, OutboxRow
from app.writeback.jobs import enqueue_deliveries
from app.writeback.outbox import plan_field_writes
from sandbox.redis_server import throwaway_redis
from sandbox.salesforce import start_sandbox

AS_OF = date(2026, 11, 1)
STEP = 2.0


def scored_frame(account_ids: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(account_ids)
    health = rng.uniform(20, 100, n).round(1)
    return pd.DataFrame(
        {
            "health": health,
            "band": np.select([health >= 80, health >= 60, health >= 40], ["healthy", "at_risk", "critical"],
                              "churning"),
            "trend_7d": rng.normal(0, 3, n).round(1),
            "driver_1": "adoption", "driver_2": None, "driver_3": None,
            "expansion_score": rng.uniform(0, 100, n).round(1),
            "expansion_type": rng.choice(["seat", "plan", "feature"], n),
        },
        index=pd.Index(account_ids, name="account_id"),
    )  # fmt: skip


def prepare(engine, org, n: int) -> list[int]:
    """N store accounts linked to N Salesforce Accounts."""
    accounts = pd.DataFrame({"key": [f"W{i:06d}" for i in range(n)], "name": [f"Bench {i}" for i in range(n)],
                             "status": "active"})  # fmt: skip
    sf_ids = [org.insert("Account", {"Name": f"Bench {i}"}, raw=True) for i in range(n)]
    with engine.begin() as conn:
        ids = load_accounts(conn, accounts)
        links = [{"account_id": ids[f"W{i:06d}"], "vendor": "salesforce", "object": "Account", "external_id": sf}
                 for i, sf in enumerate(sf_ids)]  # fmt: skip
        conn.execute(ExternalId.__table__.insert(), links)
    return [ids[f"W{i:06d}"] for i in range(n)]


def deliver_with_workers(engine, settings: Settings, env: dict, workers: int) -> float:
    """Seconds from enqueueing to the last row delivered, with `workers` started and idle beforehand."""
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(settings.redis_url)
    command = [sys.executable, "-m", "app", "worker"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen(command, env=env, **quiet) for _ in range(workers)]
    try:
        while len(Worker.all(connection=connection)) < workers:
            time.sleep(0.1)
        start = time.perf_counter()
        enqueue_deliveries(settings, engine, vendors=("salesforce",), connection=connection)
        while True:
            with engine.connect() as conn:
                if not conn.scalar(select(func.count()).where(OutboxRow.status != "done")):
                    break
            time.sleep(0.02)
        return time.perf_counter() - start
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    n = args.accounts
    with tempfile.TemporaryDirectory() as tmp, throwaway_redis() as redis_url, start_sandbox() as sandbox:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade_schema(engine)
        ids = prepare(engine, sandbox.org, n)
        env = {**os.environ, **sandbox.settings_env(), "DATABASE_URL": url, "REDIS_URL": redis_url,
               "CSE_DATA_DIR": tmp}  # fmt: skip
        settings = Settings.from_env(env)
        os.environ.update(env)

        first = scored_frame(ids, seed=1)
        with engine.begin() as conn:
            planned = plan_field_writes(conn, first, AS_OF, STEP)
        for workers in (1, 2):
            if workers == 2:  # the same writes again, from scratch
                with engine.begin() as conn:
                    conn.execute(update(OutboxRow).values(status="pending", attempts=0, job_id=None))
            calls_before = len(sandbox.org.request_log)
            elapsed = deliver_with_workers(engine, settings, env, workers)
            writes = [r for r in sandbox.org.request_log[calls_before:] if r[0] == "PATCH"]
            minimum = math.ceil(planned / 200)
            print(f"salesforce, {workers} worker(s): {planned:,} records in {elapsed:.1f} s = "
                  f"{planned / elapsed:,.0f} records/s; write calls {len(writes)} vs minimum {minimum} "
                  f"(ratio {len(writes) / minimum:.3f}, target ≤ 1.05)")  # fmt: skip

        moved = first.copy()
        rng = np.random.default_rng(2)
        changed = rng.choice(len(moved), size=n // 20, replace=False)
        moved.iloc[changed, moved.columns.get_loc("health")] = (moved["health"].iloc[changed] + 10).clip(upper=100)
        with engine.begin() as conn:
            steady = plan_field_writes(conn, moved, AS_OF, STEP)
        print(f"steady-state rescoring with {len(changed):,} of {n:,} scores moved: {steady:,} records written "
              f"= {steady / n:.1%} (target 5 %, not 100 %) at {datetime.now():%H:%M}")  # fmt: skip


if __name__ == "__main__":
    main()
