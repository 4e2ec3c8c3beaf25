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

    python -m bench.fightchurn_data OUT_DIR [--customers 2000] [--months 8] [--seed 7] [--then-baseline]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
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


def simulate(python: Path, database: str, out: Path, customers: int, months: int, seed: int) -> None:
    """Run ChurnSim socialnet7 in fightchurn's environment into `database` (schema socialnet7)."""
    url = _server()
    end = (pd.Timestamp(START) + pd.DateOffset(months=months)).date().isoformat()
    env = {**os.environ, "CHURN_DB": database, "CHURN_DB_USER": url.username or "postgres",
           "CHURN_DB_PASS": url.password or "", "CHURN_DB_HOST": f"{url.host}", "CHURN_OUT_DIR": str(out / "churnsim"),
           "PGPORT": str(url.port or 5432)}  # fmt: skip
    overrides = [f"model={MODEL}", f"random_seed={seed}", f"init_customers={customers}", f"start_date={START}",
                 f"end_date={end}", "n_parallel=1", "force=true"]  # fmt: skip
    subprocess.run([str(python), "-m", "fightchurn.churnsim.churnsim", *overrides], env=env, check=True,
                   cwd=out, stdout=subprocess.DEVNULL)  # fmt: skip


def trim(events: pd.DataFrame, terms: pd.DataFrame, cut: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data up to `cut` (see the module doc): later events and terms dropped, terms running past it open."""
    events = events[pd.to_datetime(events["event_time"]) < cut]
    terms = terms[pd.to_datetime(terms["start_date"]) < cut].copy()
    terms.loc[pd.to_datetime(terms["end_date"]) >= cut, "end_date"] = None
    return events, terms


def export(database: str, out: Path, cut: pd.Timestamp) -> dict[str, int]:
    """The simulation's tables, up to `cut`, as the three files of the import format."""
    from sqlalchemy import create_engine

    engine = create_engine(_server().set(database=database))
    with engine.connect() as conn:
        events = pd.read_sql(f"SELECT account_id, event_time, event_type_id, user_id FROM {MODEL}.event "
                             "ORDER BY event_time, account_id, event_type_id, user_id", conn)  # fmt: skip
        types = pd.read_sql(f"SELECT event_type_id, event_type_name FROM {MODEL}.event_type ORDER BY 1", conn)
        columns = "account_id, product, mrr, quantity, bill_period_months, discount, start_date, end_date"
        terms = pd.read_sql(f"SELECT {columns} FROM {MODEL}.subscription ORDER BY 1, 7, 2", conn)
    engine.dispose()
    events, terms = trim(events, terms, cut)
    terms.insert(0, "subscription_id", range(1, len(terms) + 1))
    terms["discount"] = terms["discount"].fillna(0.0)
    out.mkdir(parents=True, exist_ok=True)
    events.to_csv(out / "events.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    types.to_csv(out / "event_types.csv", index=False)
    terms.to_csv(out / "subscriptions.csv", index=False)
    return {"events": len(events), "event_types": len(types), "subscriptions": len(terms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--then-baseline", action="store_true", help="run bench.churn_baseline on the export")
    args = parser.parse_args()
    python = ensure_venv()
    database = f"cse_fightchurn_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{database}"')
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        simulate(python, database, args.out.resolve(), args.customers, args.months, args.seed)
        cut = pd.Timestamp(START) + pd.DateOffset(months=args.months - 1)
        print(export(database, args.out, cut))
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(f"reproduce: python -m bench.fightchurn_data {args.out} --customers {args.customers} "
          f"--months {args.months} --seed {args.seed}")  # fmt: skip
    if args.then_baseline:
        subprocess.run([sys.executable, "-m", "bench.churn_baseline", "--data", str(args.out)], check=True)


if __name__ == "__main__":
    main()
