"""Benchmark the program tick: one scheduler tick over 100,000 active enrollments.

    python -m bench.programs [--enrollments 100000] [--database sqlite|postgresql|both] [--writers 2]

Targets (issue 11): the tick takes ≤ 5 s and peak memory stays < 1 GB, on SQLite and PostgreSQL; the outbox rows it
creates per step equal the accounts due (every account here is linked to one CRM company, so one task each; the
bench counts both and fails when they differ). The book: N accounts with one contact and one CRM company each, all
enrolled in the shipped retention program (no control group here), their first step due now. Setup is not timed;
the tick (advance + release to the outbox, one transaction) is, in wall and CPU time (on a loaded machine CPU time
is the fairer figure; with PostgreSQL part of the work runs in the server, outside this process's CPU time:
`server_cpu_s` is that part, summed over the tick's backends — its own and its `--writers` parallel writers, see
app/programs/tick._write — read from /proc when the server runs on this machine). Peak memory is the maximum
resident set (ru_maxrss) of the process that runs the tick, which includes the interpreter and the libraries
(~150 MB); the book is loaded by a process of its own, and each database runs in a fresh process.
The connector registry is discovered before the timing, as a worker does once when it starts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select, true

from app.programs.definitions import ActiveProgram
from app.programs.tick import Limits, run_tick
from app.settings import Settings
from app.store.bulk import staged_insert
from app.store.current_scores import refresh_current
from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, Contact, ExternalId, OutboxRow, ProgramEnrollment, Score
from bench.throwaway import postgres_schema
from connectors.registry import all_connectors, connector
from engine.programs import DEFAULT_PROGRAMS_DIR
from engine.programs.definition import parse_program
from engine.programs.plan import step_table

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 2, 9, 0)


def fill(engine, n: int) -> None:
    """N accounts, contacts, CRM links, a score each (the task budget reads its risk) and active retention
    enrollments (first step due), loaded in bulk."""
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
    scores = pd.DataFrame({"account_id": ids, "as_of": NOW.date(), "computed_at": NOW, "health": 100.0 - ids % 100,
                           "risk": (ids % 100).astype(float)})  # fmt: skip
    with engine.begin() as conn:
        for table, frame in ((Account, accounts), (Contact, contacts), (ExternalId, links), (Score, scores),
                             (ProgramEnrollment, enrollments)):  # fmt: skip
            staged_insert(conn, table.__table__, frame, list(frame.columns))
        refresh_current(conn, true())  # each account's current score, as scoring keeps it (WHERE: see bulk)


def due_per_step(engine, programs: dict[str, ActiveProgram]) -> Counter:
    """Accounts whose next step is due at NOW, per step key: what the tick must hand to the outbox."""
    pe = ProgramEnrollment.__table__
    query = select(pe.c.program, pe.c.tier, pe.c.step).where(pe.c.status == "active", pe.c.next_due_at <= NOW)
    with engine.connect() as conn:
        due = pd.DataFrame(conn.execute(query).all(), columns=["program", "tier", "step"])
    keyed = due.merge(step_table({n: a.program for n, a in programs.items()}), on=["program", "tier", "step"])
    return Counter(keyed["key"].value_counts().to_dict())


def outbox_per_step(engine) -> Counter:
    """Outbox rows per step key (their dedupe key is `program:<enrollment>:<step>:<vendor>`)."""
    with engine.connect() as conn:
        keys = conn.execute(select(OutboxRow.dedupe_key)).scalars().all()
    return Counter(key.split(":")[2] for key in keys if key.startswith("program:"))


def backend_pids(engine, writers: int) -> list[int]:
    """The PostgreSQL backends the tick will run on: its own connection's and, checked out of the pool and put back
    so the tick's parallel writers get them again, `writers` more (empty on SQLite, whose work is this process's)."""
    if engine.dialect.name != "postgresql":
        return []
    connections = [engine.connect() for _ in range(writers + 1)]
    pids = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar() for c in connections]
    for c in connections:
        c.close()
    return pids


def server_cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) of these PostgreSQL backends so far, read from /proc when the server runs on this
    machine (None elsewhere, and on SQLite): on a loaded machine the server's share of a tick is measured apart
    from the wall time the other processes stretch."""
    if not pids:
        return None
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


LOADED = ("accounts", "contacts", "external_ids", "scores", "current_scores", "program_enrollments")


def setup(url: str, n: int) -> None:
    """The store and its book (run in a process of its own, so its frames do not count in the tick's memory).

    On PostgreSQL the loaded tables are analyzed, as autovacuum does within a minute of a load that size: without
    statistics the planner takes the 100,000 due enrollments for one row and joins their accounts and scores by an
    index lookup each (0.34 s against 0.13-0.16 s by hash, measured), which no store that has run a while sees."""
    engine = make_engine(url)
    upgrade_schema(engine)
    fill(engine, n)
    if engine.dialect.name == "postgresql":  # the bench's schema only (a bare ANALYZE reads every schema)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {', '.join(LOADED)}")
    engine.dispose()


def run(url: str, n: int, writers: int) -> dict:
    child = multiprocessing.get_context("spawn").Process(target=setup, args=(url, n))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"setup failed (exit code {child.exitcode})")
    engine = make_engine(url)
    path = DEFAULT_PROGRAMS_DIR / "retention.yaml"
    program = parse_program(path.read_text(encoding="utf-8"), str(path))
    programs = {"retention": ActiveProgram(program, 0, str(path))}
    expected = due_per_step(engine, programs)
    # The high tier's first step is a CSM call (crm_task): one per account; no task budget limits the bench.
    limits = Limits(messages_per_week=2, task_budget_per_csm=10**9)
    all_connectors()  # discovered once per worker process (imports every connector), not per tick
    pids = backend_pids(engine, writers)
    server = server_cpu(pids)
    with engine.connect() as conn:
        wall, cpu = time.perf_counter(), time.process_time()
        with conn.begin():
            result = run_tick(conn, programs, NOW, limits, writers)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = None if server is None else server_cpu(pids) - server
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    created = outbox_per_step(engine)
    engine.dispose()
    return {
        "database": engine.dialect.name,
        "enrollments": n,
        "writers": writers,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "server_cpu_s": None if server is None else round(server, 2),
        "sent": result.sent,
        "due_per_step": dict(expected),
        "outbox_per_step": dict(created),
        "outbox_equals_due": created == expected,
        "peak_rss_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument(
        "--writers",
        type=int,
        default=Settings().program_tick_writers,
        help="PostgreSQL connections writing the round side by side (CSE_PROGRAM_TICK_WRITERS)",
    )
    args = parser.parse_args()
    if args.database == "both":  # each database in a fresh process: its peak memory is its own
        for database in ("sqlite", "postgresql"):
            command = [sys.executable, "-m", "bench.programs", "--enrollments", str(args.enrollments),
                       "--database", database, "--postgres-url", args.postgres_url,
                       "--writers", str(args.writers)]  # fmt: skip
            if subprocess.run(command).returncode:
                raise SystemExit(f"the {database} run failed")
        return
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            result = run(f"sqlite:///{Path(folder) / 'bench.db'}", args.enrollments, args.writers)
    else:
        with postgres_schema(args.postgres_url, "bench_programs") as url:
            result = run(url, args.enrollments, args.writers)
    print(result, flush=True)
    if not result["outbox_equals_due"]:
        raise SystemExit("outbox rows per step differ from the accounts due")


if __name__ == "__main__":
    main()
