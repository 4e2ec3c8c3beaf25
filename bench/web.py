"""Benchmark the web app's pages at 100,000 accounts: dashboard and accounts list p95 ≤ 300 ms, account page
p95 ≤ 100 ms (server time: the whole Flask request, signed in, measured around the in-process call).

    python -m bench.web                            # SQLite, 100,000 accounts
    python -m bench.web --accounts 100000 --requests 40 --postgres-url postgresql+psycopg://postgres@127.0.0.1/test

The store is the card benchmark's (bench/cards.py: synthetic accounts, 60 days of rollups, three scoring days,
CRM links, 40,000 open CRM tasks, enrollment requests, overrides), its accounts spread over 40 CSMs and three
segments before scoring. The dashboard is read unfiltered and filtered by segment, CSM and band; the accounts list
sorted by name, health and churn risk, filtered by band and health range, searched, and paged deep; account pages
at random. Besides the wall time of each request, its CPU time in this process is printed (on SQLite that
includes the database's work; PostgreSQL's is in its server) and the load average, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from app.settings import Settings
from app.store.db import make_engine
from app.users import add_user
from app.web import create_app
from bench.cards import prepare
from bench.throwaway import postgres_schema

PASSWORD = "bench password 1"
DASHBOARDS = ("/", "/?segment=smb", "/?owner=csm07", "/?band=at_risk")
LISTS = ("/accounts", "/accounts?sort=health&dir=asc", "/accounts?band=critical&sort=arr&dir=desc",
         "/accounts?q=acme", "/accounts?page=900", "/accounts?sort=churn&dir=desc&page=3",
         "/accounts?health_min=40&health_max=50&segment=mid")  # fmt: skip
TARGETS = {"dashboard": 300, "accounts list": 300, "account page": 100}
CSMS, SEGMENTS = 40, ("smb", "mid", "ent")


def spread_owners(conn) -> None:
    """The synthetic accounts have one segment and no CSM; a book has a few of each (so filters select parts)."""
    segment = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(SEGMENTS))
    owner = f"CASE WHEN id % {CSMS} < 10 THEN 'csm0' ELSE 'csm' END || (id % {CSMS})"  # csm00 … csm39
    conn.execute(text(f"UPDATE accounts SET owner = {owner}, segment = CASE id % {len(SEGMENTS)} {segment} END"))


def _signed_in_client(database_url: str, folder: Path):
    engine = make_engine(database_url)
    with engine.begin() as conn:
        add_user(conn, "bench", PASSWORD, "admin")
    settings = Settings(database_url=database_url, data_dir=folder / "data", secret_key="bench-session-key")
    client = create_app(settings, engine).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert (
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}).status_code == 302
    )
    return client, engine


def _timed(client, path: str) -> tuple[float, float]:
    """Wall and CPU milliseconds of one request."""
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(path)
    elapsed = ((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def measure(database_url: str, n: int, requests: int, folder: Path, seed: int = 5) -> dict[str, float]:
    client, engine = _signed_in_client(database_url, folder)
    rng = np.random.default_rng(seed)
    for path in (*DASHBOARDS, *LISTS, "/accounts/1"):  # warm-up: pool, statement caches, templates
        _timed(client, path)
    times = {"dashboard": [], "accounts list": [], "account page": []}
    for k in range(requests):
        times["dashboard"].append(_timed(client, DASHBOARDS[k % len(DASHBOARDS)]))
        times["accounts list"].append(_timed(client, LISTS[k % len(LISTS)]))
        for account_id in rng.integers(1, n + 1, 5):
            times["account page"].append(_timed(client, f"/accounts/{int(account_id)}"))
    engine.dispose()
    p95s = {}
    for what, values in times.items():
        wall, cpu = np.array(values).T
        p50, p95 = np.percentile(wall, [50, 95])
        cpu50, cpu95 = np.percentile(cpu, [50, 95])
        p95s[what] = float(p95)
        verdict = "met" if p95 <= TARGETS[what] else "NOT met"
        print(f"  {what}: {len(values)} requests, server time p50 {p50:.0f} ms, p95 {p95:.0f} ms "
              f"(target ≤ {TARGETS[what]} ms: {verdict}); CPU in this process p50 {cpu50:.0f} ms, "
              f"p95 {cpu95:.0f} ms")  # fmt: skip
    print("  load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    return p95s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--postgres-url", help="also run on this PostgreSQL database (a throwaway schema is used)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print("python -m bench.web " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if not args.skip_sqlite:
            url = f"sqlite:///{folder / 'bench.db'}"
            print(f"SQLite, {args.accounts:,} accounts:")
            prepare(url, args.accounts, shape=spread_owners)
            measure(url, args.accounts, args.requests, folder)
        if args.postgres_url:
            with postgres_schema(args.postgres_url, "bench_web") as url:
                print(f"PostgreSQL, {args.accounts:,} accounts:")
                prepare(url, args.accounts, shape=spread_owners)
                measure(url, args.accounts, args.requests, folder)


if __name__ == "__main__":
    main()
