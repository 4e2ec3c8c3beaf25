"""The public simulated SaaS data set: fightchurn's ChurnSim (`socialnet7`, fixed seed), exported in the import
format of bench/saas_sim.py (events.csv, event_types.csv, subscriptions.csv; the same history mapping reads both).

fightchurn 1.2.0 pins SQLAlchemy 1.4, numpy with numba, xgboost, shap and hydra, so it cannot share cse's
environment (SQLAlchemy 2). It runs here in its own virtual environment (`.venv-fightchurn` beside this repository,
created on first use with `pip install fightchurn==1.2.0`), as a subprocess, against a throwaway PostgreSQL
database created for the run on CSE_TEST_POSTGRES_URL's server and dropped afterwards. The export reads that
database with cse's own driver.

ChurnSim simulates each customer a whole month at a time and stops before a month that would pass the end date,
so in the last month every customer looks gone (no events, no renewal). The export ends the data one month before
the simulation's end: events and terms from then on are dropped, and terms running past it are open (no end).

socialnet7 has one plan (basic, 9.99/month, monthly terms) and no upsell, downsell or add-on transitions: churn
is the only outcome it simulates, so an upsell model has no positive label to learn from on this data set.

ChurnSim is a per-customer Python loop (each simulated day, each event drawn one by one), so a large data set takes
CPU-hours in one process; its own `n_parallel` uses joblib workers whose random streams are not reproducible.
`--parts K` instead splits the run into K independent ChurnSim simulations, each with its own seed (seed, seed+1,
...), its own share of the customers, its own database and its own temporary directory (ChurnSim keeps its
customer-id counter in a file there), run `--jobs` at a time in order, and merges them with the account ids of
part k shifted past those of part k-1: each part is deterministic, so the merged set is too. Customers never
interact in ChurnSim, so K parts simulate the same kind of customers as one run of the same size would; what
differs is only that each part draws its own day-of-week multipliers and its growth is rounded up per part.
`--parts 1` (the default) is the plain run.

On a shared machine the speed of a run is unknown in advance. `--minutes M` stops it after M minutes of wall time:
the parts not finished by then are dropped, the finished leading parts 0..m-1 are exported, and the printed
`reproduce:` line names the customers and parts that give exactly that data set.

    python -m bench.fightchurn_data OUT_DIR [--customers 2000] [--months 8] [--seed 7] [--parts 1] [--jobs 1]
        [--minutes M] [--then-baseline]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

FIGHTCHURN = "fightchurn==1.2.0"
VENV = Path(__file__).resolve().parents[1] / ".venv-fightchurn"
POSTGRES_URL = os.environ.get("CSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MODEL = "socialnet7"
START = "2020-01-01"


def ensure_venv(venv: Path = VENV) -> Path:
    """fightchurn's own environment (created once); returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import fightchurn.churnsim.churnsim"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", FIGHTCHURN], check=True)
    return python


def _server():
    from sqlalchemy import make_url

    return make_url(POSTGRES_URL)


def _admin(statement: str) -> None:
    """CREATE/DROP DATABASE run outside a transaction, on the server's maintenance connection."""
    import psycopg

    url = _server()
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname=url.database, autocommit=True) as conn:  # fmt: skip
        conn.execute(statement)


def shares(customers: int, parts: int) -> list[int]:
    """The initial customers of each part: as equal as possible, summing to `customers`."""
    return [customers // parts + (1 if k < customers % parts else 0) for k in range(parts)]


ENTRY = ("-m", "fightchurn.churnsim.churnsim")


def start_simulation(python: Path, database: str, out: Path, customers: int, months: int, seed: int,
                     scratch: Path, entry: tuple[str, ...] = ENTRY) -> subprocess.Popen:  # fmt: skip
    """Start ChurnSim socialnet7 in fightchurn's environment into `database` (schema socialnet7).

    `scratch` becomes the run's TMPDIR: ChurnSim keeps its customer-id counter and per-customer COPY files in the
    temporary directory, so runs sharing one would hand out the same ids and overwrite each other's files.
    `entry` is what the python runs (ChurnSim's own module, or a script wrapping it, e.g. bench/churnsim_oracle.py).
    """
    url = _server()
    end = (pd.Timestamp(START) + pd.DateOffset(months=months)).date().isoformat()
    env = {**os.environ, "CHURN_DB": database, "CHURN_DB_USER": url.username or "postgres",
           "CHURN_DB_PASS": url.password or "", "CHURN_DB_HOST": f"{url.host}", "CHURN_OUT_DIR": str(out / "churnsim"),
           "PGPORT": str(url.port or 5432), "TMPDIR": str(scratch)}  # fmt: skip
    overrides = [f"model={MODEL}", f"random_seed={seed}", f"init_customers={customers}", f"start_date={START}",
                 f"end_date={end}", "n_parallel=1", "force=true"]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(python), *entry, *overrides], env=env, cwd=out,
                            stdout=subprocess.DEVNULL)  # fmt: skip


def part_dir(out: Path, k: int, parts: int) -> Path:
    """Where part k of `parts` runs: ChurnSim writes its files under `<this>/churnsim` (its CHURN_OUT_DIR)."""
    return out if parts == 1 else out / "churnsim" / f"part{k}"


def cut_date(months: int) -> pd.Timestamp:
    """The end of the exported data: one month before the simulation's end (see the module doc)."""
    return pd.Timestamp(START) + pd.DateOffset(months=months - 1)


def simulate(python: Path, databases: list[str], out: Path, customers: int, months: int, seed: int, jobs: int = 1,
             deadline: float | None = None, entry: tuple[str, ...] = ENTRY) -> int:  # fmt: skip
    """Run the parts (see the module doc), `jobs` at a time, part k with seed `seed + k` into `databases[k]`;
    returns how many leading parts finished (all of them without a `deadline`, a time.monotonic() value)."""
    queue = list(enumerate(shares(customers, len(databases))))
    running: dict[int, subprocess.Popen] = {}
    finished: set[int] = set()
    with tempfile.TemporaryDirectory() as scratch:
        while queue or running:
            while queue and len(running) < jobs:
                k, share = queue.pop(0)
                (Path(scratch) / f"part{k}").mkdir()
                part_out = part_dir(out, k, len(databases))
                running[k] = start_simulation(python, databases[k], part_out, share, months, seed + k,
                                              Path(scratch) / f"part{k}", entry)  # fmt: skip
            for k, run in list(running.items()):
                if run.poll() is None:
                    continue
                if run.returncode != 0:
                    raise RuntimeError(f"ChurnSim part {k} failed: {run.args}")
                del running[k]
                finished.add(k)
            if deadline is not None and time.monotonic() > deadline:
                for run in running.values():
                    run.terminate()
                    run.wait()
                break
            time.sleep(1)
    done = 0
    while done in finished:
        done += 1
    return done


def trim(events: pd.DataFrame, terms: pd.DataFrame, cut: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data up to `cut` (see the module doc): later events and terms dropped, terms running past it open."""
    events = events[pd.to_datetime(events["event_time"]) < cut]
    terms = terms[pd.to_datetime(terms["start_date"]) < cut].copy()
    terms.loc[pd.to_datetime(terms["end_date"]) >= cut, "end_date"] = None
    return events, terms


def read_part(database: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One simulation's events, event types and subscription terms."""
    from sqlalchemy import create_engine

    engine = create_engine(_server().set(database=database))
    with engine.connect() as conn:
        events = pd.read_sql(f"SELECT account_id, event_time, event_type_id, user_id FROM {MODEL}.event", conn)
        types = pd.read_sql(f"SELECT event_type_id, event_type_name FROM {MODEL}.event_type ORDER BY 1", conn)
        columns = "account_id, product, mrr, quantity, bill_period_months, discount, start_date, end_date"
        terms = pd.read_sql(f"SELECT {columns} FROM {MODEL}.subscription", conn)
    engine.dispose()
    return events, types, terms


def part_offsets(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> list[int]:
    """What each part's (events, terms) account ids are shifted by in the merged set: past the previous part's."""
    offsets = [0]
    for part_events, part_terms in parts[:-1]:
        offsets.append(offsets[-1] + int(max(part_events["account_id"].max(), part_terms["account_id"].max())) + 1)
    return offsets


def merge_parts(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The parts' events and terms as one data set: each part's account ids shifted past the previous part's."""
    events, terms = [], []
    for (part_events, part_terms), offset in zip(parts, part_offsets(parts), strict=True):
        events.append(part_events.assign(account_id=part_events["account_id"] + offset))
        terms.append(part_terms.assign(account_id=part_terms["account_id"] + offset))
    merged_events = pd.concat(events, ignore_index=True)
    merged_events = merged_events.sort_values(["event_time", "account_id", "event_type_id", "user_id"])
    merged_terms = pd.concat(terms, ignore_index=True).sort_values(["account_id", "start_date", "product"])
    return merged_events.reset_index(drop=True), merged_terms.reset_index(drop=True)


def export(databases: list[str], out: Path, cut: pd.Timestamp) -> dict[str, int]:
    """The simulations' tables, merged and up to `cut`, as the three files of the import format."""
    return export_parts([read_part(database) for database in databases], out, cut)


def export_parts(parts: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]], out: Path,
                 cut: pd.Timestamp) -> dict[str, int]:  # fmt: skip
    """`export` of parts already read (read_part's events, event types, terms)."""
    types = parts[-1][1]
    events, terms = trim(*merge_parts([(events, terms) for events, _, terms in parts]), cut)
    terms.insert(0, "subscription_id", range(1, len(terms) + 1))
    terms["discount"] = terms["discount"].fillna(0.0)
    out.mkdir(parents=True, exist_ok=True)
    events.to_csv(out / "events.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    types.to_csv(out / "event_types.csv", index=False)
    terms.to_csv(out / "subscriptions.csv", index=False)
    return {"events": len(events), "event_types": len(types), "subscriptions": len(terms)}


@contextmanager
def throwaway_databases(parts: int) -> Iterator[list[str]]:
    """One new database per part on the server, dropped on the way out whatever happened."""
    run = uuid.uuid4().hex[:10]
    databases = [f"cse_fightchurn_{run}_{k}" for k in range(parts)]
    try:
        for database in databases:
            _admin(f'CREATE DATABASE "{database}"')
        yield databases
    finally:
        for database in databases:
            _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", type=int, default=1, help="independent ChurnSim runs, merged (module doc)")
    parser.add_argument("--jobs", type=int, default=1, help="parts run at the same time")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this wall time, keep finished parts")
    parser.add_argument("--then-baseline", action="store_true", help="run bench.churn_baseline on the export")
    args = parser.parse_args()
    python = ensure_venv()
    deadline = None if args.minutes is None else time.monotonic() + 60 * args.minutes
    with throwaway_databases(args.parts) as databases:
        args.out.mkdir(parents=True, exist_ok=True)
        done = simulate(python, databases, args.out.resolve(), args.customers, args.months, args.seed, args.jobs,
                        deadline)  # fmt: skip
        if done == 0:
            raise SystemExit(f"no part finished within {args.minutes} minutes")
        print(export(databases[:done], args.out, cut_date(args.months)))
    customers = sum(shares(args.customers, args.parts)[:done])
    print(f"reproduce: python -m bench.fightchurn_data {args.out} --customers {customers} --months {args.months} "
          f"--seed {args.seed} --parts {done} --jobs {args.jobs}")  # fmt: skip
    if args.then_baseline:
        subprocess.run([sys.executable, "-m", "bench.churn_baseline", "--data", str(args.out)], check=True)


if __name__ == "__main__":
    main()
