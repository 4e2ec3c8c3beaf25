"""The simulated SaaS data set for tests and benchmarks.

The issue asks for fightchurn's ChurnSim (`socialnet7`, fixed seed). The package cannot run in this project's
environment: fightchurn 1.2.0 pins SQLAlchemy ~=1.4 (cse is on SQLAlchemy 2), numpy ~=2.0 with numba and llvmlite,
xgboost, shap and hydra, and writes its simulation through its own PostgreSQL schema and psycopg2. Installing it
next to cse would downgrade SQLAlchemy under the store. So this script checks whether ChurnSim is importable and,
when it is not (the normal case), generates the equivalent simulation of bench/saas_sim.py: the same eight
socialnet7 behaviours with the same utilities, churn driven by utility, plus billing terms (plans, seats, add-ons,
discounts, monthly and annual periods) that socialnet7 lacks.

    python -m bench.fightchurn_data OUT_DIR [--accounts N] [--months M] [--seed 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from bench.saas_sim import simulate, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if importlib.util.find_spec("fightchurn") is not None:
        note = ("fightchurn is installed, but its ChurnSim writes into its own PostgreSQL schema with SQLAlchemy "
                "1.4; run it in its own environment and export the tables. Using bench.saas_sim here.")  # fmt: skip
        print(note, file=sys.stderr)
    else:
        print("fightchurn is not installed (it cannot share an environment with cse: see this module's doc); "
              "generating the equivalent simulation of bench.saas_sim", file=sys.stderr)  # fmt: skip
    tables = simulate(args.accounts, args.months, args.seed)
    write(args.out, tables)
    print({name: len(frame) for name, frame in tables.items()})


if __name__ == "__main__":
    main()
