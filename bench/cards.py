"""Benchmark the card endpoint: server time per card at 100,000 accounts (target: p95 ≤ 50 ms).

    python -m bench.cards                          # SQLite, 100,000 accounts, 1,000 cards
    python -m bench.cards --accounts 100000 --requests 1000 --postgres-url postgresql+psycopg://postgres@127.0.0.1/test

The store is filled like bench.score's (synthetic accounts and 60 days of rollups), scored on three days (so each
account has a score history), linked to HubSpot companies, and given open tasks, enrollment requests and overrides
on a share of accounts, and program state (an active enrollment with its step events, 7 onboarding milestones met)
on a tenth of them. Then signed HubSpot `hubspot.fetch` requests for random companies go through the whole
Flask app (signature, portal, account resolution, the card's queries, JSON); the endpoint's own Server-Timing
header is the server time measured. A touchpoint POST per 20 reads measures the write path too.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

from app.scoring import score_and_store
from app.settings import Settings
from app.store.bulk import copy_rows
from app.store.db import make_engine
from app.store.models import (
    Account,
    Action,
    BandOverride,
    CurrentScore,
    ExternalId,
    ProgramEnrollment,
    ProgramMilestone,
    Score,
)
from app.web import create_app
from bench.score import AS_OF, fill_store
from bench.throwaway import postgres_schema
from engine.health_config import load_health_config
from sandbox.cards import hubspot_fetch

SECRET, PORTAL = "bench-client-secret", 777
TIMING = re.compile(r"card;dur=([0-9.]+)")


def _company(account_id: int) -> str:
    return str(10_000_000 + account_id)


def prepare(database_url: str, n: int, seed: int = 3, shape=None) -> None:
    """Fill, score three days, link companies, add the card's lists for some accounts. `shape(conn)` may change
    the filled accounts before they are scored."""
    fill_store(database_url, n)
    engine = make_engine(database_url)
    if shape is not None:
        with engine.begin() as conn:
            shape(conn)
    config = load_health_config()
    started = time.perf_counter()
    for back in (30, 7, 0):
        with engine.begin() as conn:
            score_and_store(conn, AS_OF - timedelta(days=back), config)
    print(f"  scored 3 days in {time.perf_counter() - started:.1f} s")
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    now = datetime.now()
    with_tasks = rng.choice(ids, n // 5, replace=False)
    with_requests = rng.choice(ids, n // 50, replace=False)
    with_overrides = rng.choice(ids, n // 100, replace=False)
    with engine.begin() as conn:
        copy_rows(conn, ExternalId.__table__, ["account_id", "vendor", "object", "external_id"],
                  [(int(i), "hubspot", "companies", _company(int(i))) for i in ids])  # fmt: skip
        copy_rows(conn, Action.__table__,
                  ["account_id", "playbook", "step", "kind", "due", "status", "dedupe_key", "payload", "created_at"],
                  [(int(i), "immediate", "usage_drop", "crm_task", now + timedelta(days=1), "released",
                    f"bench:{i}:{k}", '{"title": "Usage dropped — review with the champion"}', now)
                   for i in with_tasks for k in range(2)])  # fmt: skip
        copy_rows(conn, ProgramEnrollment.__table__,
                  ["account_id", "program", "status", "requested_by", "source", "requested_at"],
                  [(int(i), "adoption", "requested", "bench", "hubspot", now) for i in with_requests])  # fmt: skip
        copy_rows(conn, BandOverride.__table__,
                  ["account_id", "band", "reason", "author", "source", "created_at", "expires_at"],
                  [(int(i), "at_risk", "bench", "bench", "hubspot", now, now + timedelta(days=14))
                   for i in with_overrides])  # fmt: skip
        _program_state(conn, rng.choice(ids, n // 10, replace=False), now)
        if engine.dialect.name == "postgresql":
            # The tables filled only: a bare ANALYZE covers every schema of the database, other sessions' too.
            filled = (Account, Score, CurrentScore, ExternalId, Action, ProgramEnrollment, BandOverride,
                      ProgramMilestone)  # fmt: skip
            conn.execute(text("ANALYZE " + ", ".join(model.__tablename__ for model in filled)))
    engine.dispose()


def _program_state(conn, accounts: np.ndarray, now: datetime) -> None:
    """An active onboarding enrollment (ids from 1_000_001, clear of the requests) with two steps sent (their
    actions, which the history reads as `step_sent`), and seven milestones met, per account."""
    entered = now - timedelta(days=10)
    enrollment_ids = [1_000_001 + k for k in range(len(accounts))]
    copy_rows(conn, ProgramEnrollment.__table__,
              ["id", "account_id", "program", "status", "requested_by", "source", "requested_at", "version", "tier",
               "step", "holdout", "entered_at", "tier_entered_at", "next_due_at"],
              [(e, int(a), "onboarding", "active", "engine", "engine", entered, 0, 0, 2, False, entered, entered,
                now + timedelta(days=4)) for e, a in zip(enrollment_ids, accounts, strict=True)])  # fmt: skip
    copy_rows(conn, Action.__table__,
              ["account_id", "playbook", "step", "kind", "status", "dedupe_key", "created_at", "enrollment_id"],
              [(int(a), "onboarding", key, "crm_task", "released", f"program:{e}:{key}", entered + timedelta(days=d), e)
               for e, a in zip(enrollment_ids, accounts, strict=True)
               for key, d in (("kickoff", 0), ("setup_guide", 2))])  # fmt: skip
    met = ("welcome", "champion_named", "first_login", "users_invited", "first_value", "integration_connected",
           "three_active_users")  # fmt: skip
    copy_rows(conn, ProgramMilestone.__table__, ["account_id", "milestone", "met_on"],
              [(int(a), m, entered.date()) for a in accounts for m in met])  # fmt: skip


def measure(database_url: str, n: int, requests: int, seed: int = 4) -> None:
    engine = make_engine(database_url)
    settings = Settings(database_url=database_url, hubspot_client_secret=SECRET, hubspot_portal_id=str(PORTAL))
    client = create_app(settings, engine).test_client()
    rng = np.random.default_rng(seed)
    reads, writes = [], []
    url = "http://localhost/cards/hubspot"
    for k, account_id in enumerate(rng.integers(1, n + 1, requests + 20)):
        company = _company(int(account_id))
        if k % 20 == 19:
            body = {"companyId": company, "action": {"type": "touchpoint", "kind": "call", "note": uuid.uuid4().hex}}
            signed = hubspot_fetch(SECRET, url, portal_id=PORTAL, method="POST", body=body)
        else:
            signed = hubspot_fetch(SECRET, f"{url}?companyId={company}", portal_id=PORTAL)
        response = client.open(signed.url, method=signed.method, headers=signed.headers, data=signed.body)
        assert response.status_code == 200, response.get_data(as_text=True)
        if k < 20:
            continue  # warm-up: connection pool, statement caches
        server_ms = float(TIMING.search(response.headers["Server-Timing"]).group(1))
        (writes if signed.method == "POST" else reads).append(server_ms)
    engine.dispose()
    for what, times in (("card (GET)", reads), ("action + card (POST touchpoint)", writes)):
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        print(f"  {what}: {len(times)} requests, server time p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--postgres-url", help="also run on this PostgreSQL database (a throwaway schema is used)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        print(f"SQLite, {args.accounts:,} accounts:")
        prepare(url, args.accounts)
        measure(url, args.accounts, args.requests)
    if args.postgres_url:
        with postgres_schema(args.postgres_url, "bench_cards") as url:
            print(f"PostgreSQL, {args.accounts:,} accounts:")
            prepare(url, args.accounts)
            measure(url, args.accounts, args.requests)


if __name__ == "__main__":
    main()
