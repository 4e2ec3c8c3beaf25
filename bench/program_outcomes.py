"""Benchmark the dashboard's program outcomes (app/web/program_outcomes.dashboard_outcomes) over many entered
enrollments: the share of the dashboard's server time the programs section costs.

    python -m bench.program_outcomes                              # SQLite, 100,000 enrollments
    python -m bench.program_outcomes --postgres-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, ProgramEnrollment
from app.web import create_app
from app.web.program_outcomes import dashboard_outcomes
from bench.throwaway import postgres_schema

PROGRAMS = ("retention", "onboarding", "engagement", "expansion", "advocacy", "nps_quarterly")
AT = datetime(2026, 12, 1)


def _fill(engine, n: int, seed: int = 1) -> None:
    """`n` accounts, each entered in one program: a third active, completed or exited; a tenth held out."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["active", "completed", "exited"], n)
    reason = np.where(status == "exited", rng.choice(["recovered", "churned", "converted"], n), None)
    with engine.begin() as conn:
        conn.execute(insert(Account), [{"key": f"B{i:07d}", "name": f"Bench {i}", "status": "active"}
                                       for i in range(n)])  # fmt: skip
        conn.execute(insert(ProgramEnrollment), [
            {"account_id": i + 1, "program": PROGRAMS[i % len(PROGRAMS)], "status": str(status[i]),
             "exit_reason": reason[i], "holdout": bool(rng.random() < 0.1), "requested_by": "bench",
             "source": "engine", "requested_at": AT, "entered_at": AT, "arr_at_entry": 10_000.0,
             "arr_at_end": 11_000.0}
            for i in range(n)
        ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cse-bench-outcomes-"))
    schema = postgres_schema(args.postgres_url) if args.postgres_url else nullcontext(f"sqlite:///{folder / 'b.db'}")
    with schema as url:
        engine = make_engine(url)
        upgrade_schema(engine)
        _fill(engine, args.enrollments)
        app = create_app(Settings(database_url=url, data_dir=folder / "data", secret_key="bench"), engine)
        walls, cpus = [], []
        with app.app_context(), engine.connect() as conn:
            dashboard_outcomes(conn)  # imports and the definitions' parse, once per process
            for _ in range(args.requests):
                wall, cpu = time.perf_counter(), time.process_time()
                dashboard_outcomes(conn)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        engine.dispose()
    store = "PostgreSQL" if args.postgres_url else "SQLite"
    print(f"program outcomes, {args.enrollments:,} enrollments, {store}: wall p50 {1000 * np.median(walls):.0f} ms, "
          f"p95 {1000 * np.percentile(walls, 95):.0f} ms; CPU p50 {1000 * np.median(cpus):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
