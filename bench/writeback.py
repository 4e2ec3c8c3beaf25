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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.store.load import load_accounts
from app.store.models import ExternalId, OutboxRow
from app.sync import active_mapping
from app.writeback.jobs import enqueue_deliveries, pusher_for
from app.writeback.outbox import plan_field_writes
from connectors.hubspot.fields import install_fields
from connectors.registry import connector
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.redis_server import throwaway_redis
from sandbox.salesforce import start_sandbox as start_salesforce

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


@dataclass
class Crm:
    """One vendor sandbox under test: how to create N companies in it and count its batch-write calls."""

    vendor: str
    batch: int
    env: dict
    create_companies: Callable[[int], list[str]]
    write_calls: Callable[[], int]
    window_seconds: float = 0.0  # the vendor's rate-limit window: rounds start in a fresh one


@contextmanager
def salesforce_crm() -> Iterator[Crm]:
    with start_salesforce() as sandbox:
        org = sandbox.org
        yield Crm(
            "salesforce", 200, sandbox.settings_env(),
            lambda n: [org.insert("Account", {"Name": f"Bench {i}"}, raw=True) for i in range(n)],
            lambda: sum(1 for method, path in org.request_log if method == "PATCH" and "composite/sobjects" in path),
        )  # fmt: skip


@contextmanager
def hubspot_crm() -> Iterator[Crm]:
    with start_hubspot() as sandbox:
        state = sandbox.state
        yield Crm(
            "hubspot", 100, sandbox.settings_env(),
            lambda n: [state.create("companies", {"name": f"Bench {i}"}).id for i in range(n)],
            lambda: state.api_calls("/crm/v3/objects/companies/batch/update"), 10.0,
        )  # fmt: skip


def prepare(engine, crm: Crm, n: int) -> list[int]:
    """N store accounts linked to N companies in the CRM."""
    accounts = pd.DataFrame({"key": [f"W{i:06d}" for i in range(n)], "name": [f"Bench {i}" for i in range(n)],
                             "status": "active"})  # fmt: skip
    external = crm.create_companies(n)
    with engine.begin() as conn:
        ids = load_accounts(conn, accounts)
        links = [{"account_id": ids[f"W{i:06d}"], "vendor": crm.vendor, "object": connector(crm.vendor).company_object,
                  "external_id": e} for i, e in enumerate(external)]  # fmt: skip
        conn.execute(ExternalId.__table__.insert(), links)
    return [ids[f"W{i:06d}"] for i in range(n)]


def deliver_with_workers(engine, settings: Settings, env: dict, workers: int, vendor: str) -> float:
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
        enqueue_deliveries(settings, engine, vendors=(vendor,), connection=connection)
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


def bench_vendor(crm: Crm, n: int, redis_url: str, tmp: str) -> None:
    url = f"sqlite:///{Path(tmp) / f'bench-{crm.vendor}.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    ids = prepare(engine, crm, n)
    env = {**os.environ, **crm.env, "DATABASE_URL": url, "REDIS_URL": redis_url, "CSE_DATA_DIR": tmp}
    settings = Settings.from_env(env)
    os.environ.update(env)
    if crm.vendor == "hubspot":
        with engine.connect() as conn:
            install_fields(pusher_for(settings, "hubspot").client, active_mapping(conn, "hubspot", "push_companies"))
    first = scored_frame(ids, seed=1)
    with engine.begin() as conn:
        planned = plan_field_writes(conn, first, AS_OF, STEP)
    minimum = math.ceil(planned / crm.batch)
    for workers in (1, 2):
        if workers == 2:  # the same writes again, from scratch, in a fresh rate-limit window
            with engine.begin() as conn:
                conn.execute(update(OutboxRow).values(status="pending", attempts=0, job_id=None))
            time.sleep(crm.window_seconds)
        calls_before = crm.write_calls()
        elapsed = deliver_with_workers(engine, settings, env, workers, crm.vendor)
        calls = crm.write_calls() - calls_before
        print(f"{crm.vendor}, {workers} worker(s): {planned:,} records in {elapsed:.1f} s = "
              f"{planned / elapsed:,.0f} records/s; write calls {calls} vs minimum ⌈N/{crm.batch}⌉ = {minimum} "
              f"(ratio {calls / minimum:.3f}, target ≤ 1.05)")  # fmt: skip

    moved = first.copy()
    rng = np.random.default_rng(2)
    changed = rng.choice(len(moved), size=n // 20, replace=False)
    moved.iloc[changed, moved.columns.get_loc("health")] = (moved["health"].iloc[changed] + 10).clip(upper=100)
    with engine.begin() as conn:
        steady = plan_field_writes(conn, moved, AS_OF, STEP)
    print(f"{crm.vendor}, steady-state rescoring with {len(changed):,} of {n:,} scores moved: {steady:,} records "
          f"written = {steady / n:.1%} (target 5 %, not 100 %)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--vendors", default="salesforce,hubspot")
    args = parser.parse_args()
    crms = {"salesforce": salesforce_crm, "hubspot": hubspot_crm}
    for vendor in args.vendors.split(","):
        with tempfile.TemporaryDirectory() as tmp, throwaway_redis() as redis_url, crms[vendor]() as crm:
            bench_vendor(crm, args.accounts, redis_url, tmp)


if __name__ == "__main__":
    main()
