"""What a scoring chunk's reads of the score history cost as the history grows: the trend baselines
(`previous_health`) and the comparison with each account's latest stored score (`_latest_rows`).

A daily run writes a score row for every account whose score moved, so a year into daily scoring an account can
have hundreds of rows. On a filled store (`python -m bench.score --big-store URL --fill-only`, then one run so the
accounts have a current score) this adds DAYS of score rows before today for the first ACCOUNTS active accounts,
times both reads for them, and rolls everything back:

    python -m bench.score_history URL --accounts 10000 --days 0 90 365

Run it with another checkout's `app` on PYTHONPATH to time that code's reads on the same rows.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

from sqlalchemy import create_engine, text

from app.scoring import _latest_rows, previous_health
from app.scoring_chunks import active_ids
from app.store.scope import IdRange

HISTORY = """
INSERT INTO scores (account_id, as_of, computed_at, health, band, band_computed, coverage, drivers, model_version)
SELECT a.id, CAST(:today AS date) - g, now(), round((random() * 100)::numeric, 1), 'healthy', 'healthy', 1.0,
       '[]', NULL
FROM accounts a CROSS JOIN generate_series(2, :days + 1) AS g
WHERE a.id BETWEEN :first AND :last
"""


def timed(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, nargs="+", default=[0, 90, 365])
    args = parser.parse_args()
    engine, today = create_engine(args.url), date.today()
    for days in args.days:
        with engine.connect() as conn, conn.begin() as transaction:
            ids = active_ids(conn, today)[: args.accounts]
            chunk = IdRange(int(ids[0]), int(ids[-1]))
            bind = {"today": today, "days": days, "first": chunk.first, "last": chunk.last}
            added = conn.execute(text(HISTORY), bind).rowcount if days else 0
            conn.exec_driver_sql("ANALYZE scores")
            baselines = timed(previous_health, conn, today, chunk)
            latest = timed(_latest_rows, conn, today, ids.tolist(), chunk)
            per_row = f" ({added / len(ids):,.0f} rows per account added)" if days else ""
            print(f"{len(ids):,} accounts, {days} days of score history{per_row}: trend baselines {baselines:.2f} s, "
                  f"latest stored scores {latest:.2f} s", flush=True)  # fmt: skip
            transaction.rollback()
        vacuum_scores(engine)
    engine.dispose()


def vacuum_scores(engine) -> None:
    """Clear the rolled-back rows' index entries, as autovacuum would (off on this machine's server): left there,
    the next reads of the score indexes walk millions of dead entries."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM scores")


if __name__ == "__main__":
    main()
