"""Benchmark the program tick: one scheduler tick over 100,000 active enrollments.

    python -m bench.programs [--enrollments 100000] [--database sqlite|postgresql|both]

Targets (issue 11): the tick takes ≤ 5 s and peak memory stays < 1 GB, on SQLite and PostgreSQL; the outbox rows it
creates per step equal the accounts due (every account here is linked to one CRM company, so one task each). The
book: N accounts with one contact and one CRM company each, all enrolled in the shipped retention program (no
control group here), their first step due now. Setup is not timed; the tick (advance + release to the outbox, one
transaction) is. Peak memory is the process's maximum resident set (ru_maxrss), which includes the interpreter and
the libraries (~150 MB).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, func, select, text

from app.programs.definitions import ActiveProgram
from app.programs.tick import Limits, run_tick
from app.store.bulk import staged_insert
from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, Contact, ExternalId, OutboxRow, ProgramEnrollment
from connectors.registry import connector
from engine.programs import DEFAULT_PROGRAMS_DIR
from engine.programs.definition import parse_program

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 2, 9, 0)


def fill(engine, n: int) -> None:
    """N accounts, contacts, CRM links and active retention enrollments (first step due), loaded in bulk."""
    ids = np.arange(1, n + 1)
    accounts = pd.DataFrame({
        "id": ids, "key": [f"B{i:07d}" for i in ids], "name": [f"Company {i}" for i in ids], "segment": "smb",
        "plan": "team", "arr": 1000.0 + ids % 90_000, "seats_purchased": 20, "seats_active": 12,
        "customer_since": date(2025, 1, 1), "renewal_date": date(2027, 1, 1),
        "owner": [f"csm{i % 40}@vendor.example" for i in ids], "status": "active",
    })  # fmt: skip
    contacts = pd.DataFrame({"account_id": ids, "email": [f"c{i}@b{i}.example" for i in ids],
                             "name": "Pat Doe", "is_champion": True, "is_exec_sponsor": False,
                             "last_seen": NOW - timedelta(days=1)})  # fmt: skip
    crm = connector("hubspot")
    links = pd.DataFrame({"account_id": ids, "vendor": crm.name, "object": crm.company_object,
                          "external_id": [f"co{i}" for i in ids]})  # fmt: skip
    enrollments = pd.DataFrame({
        "account_id": ids, "program": "retention", "status": "active", "requested_by": "bench", "source": "engine",
        "requested_at": NOW, "version": 0, "audience": "default", "tier": 1, "step": 0, "holdout": False,
        "entered_at": NOW, "tier_entered_at": NOW, "next_due_at": NOW, "arr_at_entry": accounts["arr"],
    })  # fmt: skip
    with engine.begin() as conn:
        for table, frame in ((Account, accounts), (Contact, contacts), (ExternalId, links),
                             (ProgramEnrollment, enrollments)):  # fmt: skip
            staged_insert(conn, table.__table__, frame, list(frame.columns))


def run(url: str, n: int) -> dict:
    engine = make_engine(url)
    upgrade_schema(engine)
    fill(engine, n)
    path = DEFAULT_PROGRAMS_DIR / "retention.yaml"
    program = parse_program(path.read_text(encoding="utf-8"), str(path))
    programs = {"retention": ActiveProgram(program, 0, str(path))}
    # The high tier's first step is a CSM call (crm_task): one per account; no task budget limits the bench.
    limits = Limits(messages_per_week=2, task_budget_per_csm=10**9)
    started = time.perf_counter()
    with engine.begin() as conn:
        result = run_tick(conn, programs, NOW, limits)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        outbox = conn.scalar(select(func.count()).select_from(OutboxRow))
    engine.dispose()
    return {
        "enrollments": n,
        "seconds": round(seconds, 2),
        "sent": result.sent,
        "by_step": result.by_step,
        "outbox_rows": outbox,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def postgres_schema_url() -> tuple[str, str]:
    schema = f"bench_programs_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            print(run(f"sqlite:///{Path(folder) / 'bench.db'}", args.enrollments))
        return
    url, schema = postgres_schema_url()
    try:
        print(run(url, args.enrollments))
    finally:
        drop_schema(schema)


if __name__ == "__main__":
    main()
