"""How fast `cse import` loads a product history: an event log of ~11 M rows and ~30 k subscription terms.

    python -m bench.import [--data DIR] [--accounts 6500] [--months 12] [--database sqlite|postgresql]

The files come from bench/saas_sim.py (generated into DIR first if missing). The import runs in a child process
so its peak resident memory is its own (ru_maxrss); PostgreSQL runs in a throwaway schema of
CSE_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped afterwards. When that
server runs on this machine, the CPU time of its backends serving the import is printed too (from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.saas_sim import MAPPING

POSTGRES_URL = os.environ.get("CSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _child(data: Path, url: str, work: Path) -> None:
    """Run one import and print its summary, seconds and peak memory as JSON (in the child process)."""
    from app.ml.importer import import_file
    from app.store.db import make_engine, upgrade_schema

    engine = make_engine(url)
    upgrade_schema(engine)
    backends = _server_backends(engine)
    started, cpu_started = time.perf_counter(), time.process_time()
    server_started = _server_cpu(backends)
    meta = import_file(data / "bench.yaml", work, engine)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    server = _server_cpu(backends) - server_started if backends else None
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_mb": round(peak_mb),
                      "server_cpu_seconds": None if server is None else round(server, 1), **meta}))  # fmt: skip


def _server_backends(engine) -> list[int]:
    """The PostgreSQL backend process ids of the engine's connections (to read their CPU time from /proc when the
    server runs on this machine); empty on SQLite or a remote server. The pool's connections are opened and noted
    up front, so the import reuses the ones measured."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return []
    connections = [engine.connect() for _ in range(2)]
    pids = [c.execute(text("SELECT pg_backend_pid()")).scalar() for c in connections]
    for connection in connections:
        connection.close()
    return [pid for pid in pids if Path(f"/proc/{pid}/stat").exists()]


def _server_cpu(pids: list[int]) -> float:
    """User plus system CPU seconds of these processes so far (fields 14 and 15 of /proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _postgres_schema() -> tuple[str, str]:
    from sqlalchemy import text

    from app.store.db import make_engine

    schema = f"cse_bench_{uuid.uuid4().hex[:10]}"
    with make_engine(POSTGRES_URL).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop(schema: str) -> None:
    from sqlalchemy import text

    from app.store.db import make_engine

    with make_engine(POSTGRES_URL).begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "cse-bench-history")
    parser.add_argument("--accounts", type=int, default=6500)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return
    if not (args.data / "events.csv").exists():
        from bench.saas_sim import simulate, write

        write(args.data, simulate(args.accounts, args.months))
    (args.data / "bench.yaml").write_text(MAPPING)
    with tempfile.TemporaryDirectory() as work:
        schema = None
        if args.database == "postgresql":
            url, schema = _postgres_schema()
        else:
            url = f"sqlite:///{Path(work) / 'cse.db'}"
        try:
            done = subprocess.run([sys.executable, "-m", "bench.import", "--child", str(args.data), url, work],
                                  check=True, capture_output=True, text=True)  # fmt: skip
        finally:
            if schema:
                _drop(schema)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    server = (", SQLite in it" if args.database == "sqlite"
              else "; the database server's CPU is not in it" if result["server_cpu_seconds"] is None
              else f"; PostgreSQL server {result['server_cpu_seconds']} s CPU")  # fmt: skip
    print(f"{args.database}: {result['events_read']:,} events ({result['event_rows']:,} usage sums) and "
          f"{result['terms']:,} terms imported in {result['seconds']} s wall, {result['cpu_seconds']} s CPU (importer "
          f"process{server}), peak {result['peak_mb']} MB; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"reproduce: python -m bench.import --data {args.data} --database {args.database}")


if __name__ == "__main__":
    main()
