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

import importlib.util
import sys

from bench import saas_sim


def main() -> None:
    if importlib.util.find_spec("fightchurn") is not None:
        note = ("fightchurn is installed, but its ChurnSim writes into its own PostgreSQL schema with SQLAlchemy "
                "1.4; run it in its own environment and export the tables. Using bench.saas_sim here.")  # fmt: skip
    else:
        note = ("fightchurn is not installed (it cannot share an environment with cse: see this module's doc); "
                "generating the equivalent simulation of bench.saas_sim")  # fmt: skip
    print(note, file=sys.stderr)
    saas_sim.main()


if __name__ == "__main__":
    main()
