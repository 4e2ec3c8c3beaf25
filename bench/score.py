"""Benchmark the health engine alone and `cse score` end to end; prints accounts per second and peak memory.

    python -m bench.score                       # engine; 100,000 on SQLite and PostgreSQL; 1,000,000 on PostgreSQL
    python -m bench.score --accounts 100000 --big-accounts 1000000 --shards 2 --postgres-url postgresql+psycopg://...
    python -m bench.score --skip-big            # without the million-account store (it takes minutes to fill)
    python -m bench.score --skip-sqlite --accounts 100000 --big-accounts 200000   # PostgreSQL only, smaller
    python -m bench.score --skip-sqlite --skip-big --before main     # the 100,000-account stores vs the main branch
    python -m bench.score --big-store URL --fill-only   # fill a million-account store for today once (minutes)
    python -m bench.score --big-store URL               # then score only it: one process, then --shards 2

Targets (issue 2): engine ≥ 1,000,000 accounts/s; end to end ≤ 20 s for 100,000 accounts; peak memory < 1.5 GB.
Issue 15: 1,000,000 accounts x 60 days on PostgreSQL in one process ≤ 60 s and ≤ 1.5 GB peak RSS; with --shards 2
and two `cse worker` processes the speed-up over one process. The 100,000-account runs are timed twice on the same
store, this checkout's code and the previous code (`--before`, default the `main` branch, run from a `git archive`),
and the ratio printed.
The end-to-end store is filled with synthetic accounts and 60 days of daily rollups up to today (what `cse score`
reads), then `cse score` runs as a separate process so its own wall time, peak RSS and (PostgreSQL) server CPU are
measured, twice: a fresh book's first run for the day before, as that day's run (field writes planned, nearly every
account entered in the programs), then today's daily run on the store it left (see docs/scale.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from sqlalchemy import create_engine, text

from app.store.bulk import copy_rows
from app.store.db import make_engine, upgrade_schema
from app.store.models import Account, AccountDay, Feature
from engine.canonical import METRIC_COLUMNS
from engine.health import score_health
from engine.health_config import load_health_config

AS_OF = date(2026, 11, 1)  # bench.cards' fixed book day; this bench scores today's (see main)
HISTORY_DAYS = 60


def synthetic_metrics(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.random(n) for name in METRIC_COLUMNS})
    frame["ttfv_days"] *= 120
    frame["tenure_days"] *= 900
    frame["active_days_per_week"] *= 7
    frame["avg_session_minutes"] *= 60
    frame["roi_pct"] *= 400
    frame["escalations_90d"] = rng.poisson(0.3, n)
    frame["has_champion"] = rng.integers(0, 2, n)
    frame["seat_growth_90d"] = rng.normal(0, 0.2, n)
    frame["plan_change_90d"] = rng.integers(-1, 2, n)
    frame.loc[rng.random(n) < 0.2, "roi_pct"] = np.nan  # some accounts without outcome data
    return frame


def bench_engine(n: int) -> None:
    config = load_health_config()
    metrics = synthetic_metrics(n)
    score_health(metrics.head(1000), config)  # warm-up
    start = time.perf_counter()
    scored = score_health(metrics, config)
    elapsed = time.perf_counter() - start
    tracemalloc.start()  # a second, traced run: tracing slows allocation, so it is kept out of the timing
    score_health(metrics, config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bands = scored["band"].value_counts().to_dict()
    print(
        f"engine: {n:,} accounts in {elapsed:.3f} s = {n / elapsed:,.0f} accounts/s "
        f"(peak allocation while scoring {peak / 2**20:,.0f} MiB; bands {bands})"
    )


FILL_BLOCK = 50_000  # accounts generated and written at a time, so filling a million-account store fits in memory


def fill_store(database_url: str, n: int, as_of: date = AS_OF, seed: int = 2) -> None:
    """Synthetic accounts plus daily rollups for the HISTORY_DAYS up to `as_of`, written by COPY on PostgreSQL
    (with the rollups' foreign-key triggers off: the bench builds them from the accounts it just wrote) and by the
    store's own bulk path on SQLite."""
    config = load_health_config()
    engine = make_engine(database_url)
    upgrade_schema(engine)
    masks = np.array([1 << b for b in range(len(config.features))], dtype=np.int64)
    features = pd.DataFrame({"key": list(config.features), "bit": range(len(masks)), "mask": masks})
    rows = 0
    with engine.begin() as conn:
        copy_frame(conn, Feature.__table__, features)
    for first in range(0, n, FILL_BLOCK):
        accounts, rollups = synthetic_block(np.random.default_rng([seed, first]), first, min(FILL_BLOCK, n - first),
                                            masks, as_of)  # fmt: skip
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            copy_frame(conn, Account.__table__, accounts)
            copy_frame(conn, AccountDay.__table__, rollups)
        rows += len(rollups)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # The tables filled only: a bare ANALYZE covers every schema of the database, and recorded another
            # session's tables as they were that moment (an empty enrollments table mid-run, for instance).
            conn.execute(text(f"ANALYZE {Account.__tablename__}, {AccountDay.__tablename__}, {Feature.__tablename__}"))
    engine.dispose()
    print(f"  store filled: {n:,} accounts, {rows:,} daily rollup rows")


def copy_frame(conn, table, frame: pd.DataFrame) -> None:
    """COPY … FROM STDIN on PostgreSQL (binary, built by NumPy, when every column is a number or a date; else
    CSV), the store's bulk path elsewhere."""
    if conn.dialect.name != "postgresql":  # days as the ISO text SQLite keeps (sqlite3 cannot bind NumPy's)
        days = {c: frame[c].dt.strftime("%Y-%m-%d") for c in frame.columns if is_datetime64_any_dtype(frame[c])}
        frame = frame.assign(**days)
        copy_rows(conn, table, list(frame.columns), list(frame.itertuples(index=False, name=None)))
        return
    raw = conn.connection.driver_connection
    columns = ", ".join(frame.columns)
    binary = copy_binary(table, frame)
    options = "FORMAT binary" if binary is not None else "FORMAT csv"
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN WITH ({options})") as copy:
        copy.write(binary if binary is not None else frame.to_csv(index=False, header=False))


# PostgreSQL's binary COPY layout of the fixed-width types the rollups use: (NumPy big-endian type, byte length).
BINARY_TYPES = {"INTEGER": (">i4", 4), "BIGINT": (">i8", 8), "FLOAT": (">f8", 8), "DATE": (">i4", 4)}
PG_EPOCH = np.datetime64("2000-01-01", "D")


def copy_binary(table, frame: pd.DataFrame) -> bytes | None:
    """The frame as one PostgreSQL binary COPY stream, every row laid out at once by a NumPy record type, or None
    when a column is not a fixed-width number or date or holds a missing value (CSV formats ~100,000 rows/s; this
    tens of millions)."""
    kinds = [BINARY_TYPES.get(str(table.c[name].type).upper()) for name in frame.columns]
    if None in kinds or frame.isna().to_numpy().any():
        return None
    fields = [("count", ">i2")]
    for i, (numpy_type, _) in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"v{i}", numpy_type)]
    rows = np.empty(len(frame), dtype=fields)
    rows["count"] = len(kinds)
    for i, (name, (_, length)) in enumerate(zip(frame.columns, kinds, strict=True)):
        rows[f"l{i}"] = length
        values = frame[name].to_numpy()
        if str(table.c[name].type).upper() == "DATE":
            values = (values.astype("datetime64[D]") - PG_EPOCH).astype(np.int64)
        rows[f"v{i}"] = values
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    return header + rows.tobytes() + b"\xff\xff"


def synthetic_block(rng: np.random.Generator, first: int, n: int, masks: np.ndarray,
                    as_of: date = AS_OF) -> tuple[pd.DataFrame, ...]:  # fmt: skip
    """Accounts first+1 … first+n and their rollups up to `as_of`."""
    accounts = pd.DataFrame(
        {
            "id": np.arange(first + 1, first + n + 1),
            "key": [f"B{i:07d}" for i in range(first, first + n)],
            "name": [f"Bench {i}" for i in range(first, first + n)],
            "segment": "smb",
            "arr": rng.gamma(2.0, 1200.0, n).round(2),
            "seats_purchased": rng.integers(3, 60, n),
            "api_limit": 10000,
            "api_used": rng.integers(0, 12000, n),
            "storage_limit_gb": 100.0,
            "storage_used_gb": rng.random(n) * 110,
            "customer_since": [as_of - timedelta(days=int(d)) for d in rng.integers(100, 1500, n)],
            "status": "active",
            "roi_pct": np.where(rng.random(n) < 0.7, rng.gamma(2.0, 90.0, n), np.nan),
            "goal_attainment": rng.random(n),
            "first_activity_at": as_of - timedelta(days=HISTORY_DAYS),
            "first_value_at": as_of - timedelta(days=90),
        }
    )
    accounts["seats_active"] = (accounts["seats_purchased"] * rng.uniform(0.3, 1.0, n)).astype(int)
    engagement = rng.beta(2, 2, n)
    days = np.datetime64(as_of, "D") - np.arange(HISTORY_DAYS)
    active = rng.random((n, HISTORY_DAYS)) < engagement[:, None]
    account_idx, day_idx = np.nonzero(active)
    used = rng.random((len(account_idx), len(masks))) < (0.15 + 0.6 * engagement[account_idx, None])
    rollups = pd.DataFrame(
        {
            "account_id": account_idx + first + 1,
            "day": days[day_idx],
            "logins": rng.integers(1, 20, len(account_idx)),
            "session_minutes": rng.gamma(2.0, 60.0, len(account_idx)),
            "feature_uses": used.sum(axis=1),
            "features_mask": (used * masks).sum(axis=1),
            "tickets_opened": rng.poisson(0.05, len(account_idx)),
        }
    )
    for column in ("api_calls", "tickets_closed", "escalations", "self_service", "outreach", "replies", "meetings",
                   "survey_count", "churn_signals"):  # fmt: skip
        rollups[column] = 0
    for column in ("resolution_hours", "seat_delta", "plan_delta", "survey_sum"):
        rollups[column] = 0.0
    return accounts, rollups


def fill_store_in_child(database_url: str, n: int, as_of: date) -> None:
    """Fill in a spawned process: a child forked from a big parent would report the parent's pages as its peak."""
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    process = context.Process(target=fill_store, args=(database_url, n, as_of))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"filling the store failed ({process.exitcode})")
    print(f"  filled in {time.perf_counter() - start:.0f} s (load {os.getloadavg()[0]:.1f})")


# `cse score` with "today" being the given day (argv: the day, then cse's arguments): a bench's day before the real
# today then runs as that day's daily run did, write-back planned and programs entered, instead of as a backfill.
AS_TODAY = """import sys
from datetime import date
import app.rescoring
today, sys.argv = date.fromisoformat(sys.argv[1]), ["cse", *sys.argv[2:]]
plans = app.rescoring.plans_write_back
app.rescoring.plans_write_back = lambda as_of, dry_run=False, today_=None: plans(as_of, dry_run, today)
from app.cli import main
main()
"""


class ServerCPU:
    """CPU seconds of the PostgreSQL backends whose application_name is `tag` (the child's connections, named by
    PGAPPNAME), sampled from /proc while it runs: the server's share apart from other sessions' queries. None on
    SQLite or a server on another machine. A backend's last `interval` before it exits is not counted."""

    def __init__(self, database_url: str, tag: str, interval: float = 0.25) -> None:
        self.url, self.tag, self.interval = database_url, tag, interval
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ServerCPU:
        if self.url.startswith("postgresql"):
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    @property
    def seconds(self) -> float | None:
        return sum(self.seen.values()) if self.seen else None

    def _sample(self) -> None:
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :tag OR leader_pid IN "
                     "(SELECT pid FROM pg_stat_activity WHERE application_name = :tag)")  # fmt: skip
        ticks = os.sysconf("SC_CLK_TCK")
        with engine.connect() as conn:
            while True:
                for pid in conn.execute(query, {"tag": self.tag}).scalars():
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.seen[pid] = (int(fields[11]) + int(fields[12])) / ticks
                if self.stop.wait(self.interval):
                    break
        engine.dispose()


def run_cse_score(database_url: str, label: str, n: int, day: date, extra_env: dict | None = None,
                  args: tuple[str, ...] = (), tree: Path | None = None,
                  today: date | None = None) -> tuple[float, float]:  # fmt: skip
    """Run `cse score` for `day` as a child (from the source `tree` if given, else this checkout; as if today were
    `today` if given); prints and returns its wall time and CPU time (user + sys; on a loaded machine the fairer
    figure), with its own peak RSS and, on PostgreSQL, its backends' CPU time."""
    tag = f"cse-bench-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "DATABASE_URL": database_url, "PGAPPNAME": tag, **(extra_env or {})}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    cse = ["-c", AS_TODAY, today.isoformat()] if today is not None else ["-m", "app"]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, ServerCPU(database_url, tag) as server:
        process = subprocess.Popen([sys.executable, *cse, "score", "--json", "--as-of", day.isoformat(), *args],
                                   env=env, stdout=out, cwd=tree)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, not the max over all children
        elapsed = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"cse score failed with status {status}")
        out.seek(0)
        scored = json.load(out)["accounts"]
    peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    server_cpu = "" if server.seconds is None else f", server CPU {server.seconds:.1f} s"
    print(f"cse score [{label}]: {scored:,} accounts in {elapsed:.1f} s = {n / elapsed:,.0f} accounts/s, "
          f"CPU {cpu:.1f} s (user {usage.ru_utime:.1f}, sys {usage.ru_stime:.1f}){server_cpu}, "
          f"peak RSS {peak_kib / 1024:,.0f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    return elapsed, cpu


def first_and_daily(database_url: str, label: str, n: int, day: date, tree: Path | None = None,
                    daily: bool = True) -> tuple[tuple[float, float], tuple[float, float] | None]:  # fmt: skip
    """A fresh book's first run and (unless not `daily`) the next day's run on the store it left; returns their
    (wall, CPU) times.

    The first run scores the day before `day` as that day's daily run would have (write-back planned, programs
    entered: nearly every account enters two or three); the second is `day`'s daily run of a book scored
    yesterday, with one more day of rollups, so most scores move while few accounts enter or leave a program."""
    forget_runs(database_url)
    yesterday = day - timedelta(days=1)
    # A new install's data folder: the first run checks the models as a new book's does (a folder kept from an
    # earlier run would have them checked already, and spare it that); the daily run finds them checked.
    with tempfile.TemporaryDirectory(prefix="cse-bench-data-") as data_dir:
        env = {"CSE_DATA_DIR": data_dir}
        first = run_cse_score(database_url, f"{label}, first run ({yesterday})", n, yesterday, extra_env=env,
                              tree=tree, today=yesterday)  # fmt: skip
        if not daily:
            return first, None
        analyze_runs(database_url)
        second = run_cse_score(database_url, f"{label}, daily run ({day}, scored the day before)", n, day,
                               extra_env=env, tree=tree)  # fmt: skip
    return first, second


# What a scoring run writes: emptied between two runs on one store, so each does the same work from the same state
# (a rerun of a day finds its scores and writes none, which would flatter whichever run comes second).
RUN_OUTPUTS = ("program_events", "program_enrollments", "program_milestones", "actions", "outbox", "current_scores",
               "scores", "book_day_splits", "book_day_months", "book_days", "score_shards", "score_runs")  # fmt: skip


def forget_runs(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(RUN_OUTPUTS)}"))
        else:
            for table in RUN_OUTPUTS:
                conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def analyze_runs(database_url: str) -> None:
    """On PostgreSQL, ANALYZE what a run wrote, as autovacuum does after a bulk write on a server that runs it.

    This server runs with autovacuum off, so the daily run would otherwise be planned on the statistics of before
    the first run, or of one taken while it was writing (its rows not yet visible: "empty" over thousands of
    pages). Planned for an empty table, each exit from a program (`UPDATE program_enrollments … WHERE id =
    ANY(…) AND status IN …`) scans the whole (account_id, status) index of the 2.7 M enrollments: on the
    million-account store the exits of 200,000 accounts took 323 s instead of 0.07 s, their escalations 50 s
    instead of 0.03 s."""
    engine = create_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"ANALYZE {', '.join(RUN_OUTPUTS)}"))
    engine.dispose()


def run_sharded(database_url: str, n: int, day: date, shards: int) -> float:
    """`cse score --shards N` with N `cse worker` processes on a throwaway Redis; prints the workers' peak RSS."""
    from sandbox.redis_server import throwaway_redis

    tag = f"cse-bench-workers-{os.getpid()}-{time.monotonic_ns()}"
    with throwaway_redis() as redis_url, ServerCPU(database_url, tag) as server:
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PGAPPNAME": tag}
        command = [sys.executable, "-m", "app", "worker", "score"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        workers = [subprocess.Popen(command, env=env, **quiet) for _ in range(shards)]
        time.sleep(3)  # the workers import the scoring stack before the clock starts
        try:
            elapsed, _ = run_cse_score(database_url, f"postgresql, --shards {shards} (coordinator)", n, day,
                                       {"REDIS_URL": redis_url}, ("--shards", str(shards)))  # fmt: skip
        finally:
            peaks, cpu = [], 0.0
            for worker in workers:
                worker.terminate()
                usage = os.wait4(worker.pid, 0)[2]
                peaks.append(usage.ru_maxrss / 1024)
                cpu += usage.ru_utime + usage.ru_stime
    server_cpu = "" if server.seconds is None else f", their server CPU {server.seconds:.1f} s"
    print(f"  workers' peak RSS: {', '.join(f'{p:,.0f} MiB' for p in peaks)}; their CPU {cpu:.1f} s in all"
          f"{server_cpu}")  # fmt: skip
    return elapsed


def postgres_schema(postgres_url: str):
    """A throwaway schema: (url pointing at it, a function that drops it)."""
    schema = f"cse_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    return f"{postgres_url}?options=-csearch_path%3D{schema}", drop


def source_tree(revision: str, into: Path) -> Path:
    """This repository's source at `revision` (git archive), to run the previous code on the same store."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def compare(database_url: str, label: str, n: int, day: date, before: Path | None) -> tuple[float, float]:
    """A first and a daily run (`first_and_daily`) of this checkout and, with `before`, of the previous code on the
    same store from the same state, and their ratios; returns this checkout's first run's wall and CPU time."""
    after = first_and_daily(database_url, f"{label}, this checkout", n, day)
    if before is not None:
        previous = first_and_daily(database_url, f"{label}, before", n, day, tree=before)
        for run, now, then in zip(("first run", "daily run"), after, previous, strict=True):
            print(f"  {label}, {run}: this checkout / before: wall time {now[0] / then[0]:.2f}, CPU time "
                  f"{now[1] / then[1]:.2f}")  # fmt: skip
    return after[0]


def score_big(url: str, n: int, day: date, shards: int, small: tuple[int, float, float] | None = None,
              fill_only: bool = False, daily_only: bool = False, first_only: bool = False) -> None:  # fmt: skip
    """The big store: a first and a daily run in one process, then today's first run with `shards` workers;
    `small` is (accounts, wall, CPU) of the small PostgreSQL first run of this bench, for the time per account.
    `daily_only`: today's daily run alone, on the store a first run for the day before left (and nothing since);
    `first_only`: the first run alone (for the day before, on the store emptied of earlier runs)."""
    if fill_only:
        fill_store_in_child(url, n, day)
        return
    if daily_only:
        analyze_runs(url)
        run_cse_score(url, f"postgresql, one process, daily run ({day}) on the store as left", n, day)
        return
    (one, cpu), _ = first_and_daily(url, "postgresql, one process", n, day, daily=not first_only)
    if first_only:
        return
    print(f"  target: {n:,} accounts <= 60 s and <= 1536 MiB")
    if small is not None:
        accounts, wall, small_cpu = small
        print(f"  first run's time per account vs the {accounts:,}-account book, this run: wall "
              f"{(one / n) / (wall / accounts):.2f}, CPU {(cpu / n) / (small_cpu / accounts):.2f}")  # fmt: skip
    if shards > 1:  # the first run again, for today (the shards plan write-back for the real today only)
        forget_runs(url)
        sharded = run_sharded(url, n, day, shards)
        print(f"  --shards {shards}: speed-up {one / sharded:.2f}x over one process's first run (wall time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine-accounts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--big-accounts", type=int, default=1_000_000, help="PostgreSQL, one process and sharded")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--before", default="main", help="git revision timed on the same stores ('' to skip)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test"))  # fmt: skip
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-store", help="the big store only, at this PostgreSQL URL, filled for today with "
                        "--big-accounts accounts by an earlier --fill-only (the fill takes minutes): never dropped, "
                        "what earlier runs wrote emptied first")  # fmt: skip
    parser.add_argument("--fill-only", action="store_true", help="with --big-store: fill that (empty) store, no run")
    parser.add_argument("--daily-only", action="store_true", help="with --big-store: today's daily run only, on "
                        "the store a first run for yesterday left (a daily or --shards run spoils it)")  # fmt: skip
    parser.add_argument("--first-only", action="store_true", help="with --big-store: the first run only (for "
                        "yesterday, what earlier runs wrote emptied first)")  # fmt: skip
    args = parser.parse_args()
    # Today and the day before, each as that day's `cse score` (first_and_daily); `--shards` scores the real today
    # only. Past midnight the filled rollups would end a day early: start before.
    day = date.today()
    print(f"scoring {day - timedelta(days=1)} and {day} (today); load average {os.getloadavg()[0]:.1f}")

    if args.big_store:
        score_big(
            args.big_store, args.big_accounts, day, args.shards, None, args.fill_only, args.daily_only, args.first_only
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = source_tree(args.before, Path(tmp)) if args.before else None
        if not args.skip_sqlite:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            fill_store_in_child(url, args.accounts, day)
            compare(url, "sqlite", args.accounts, day, before)
        small = None
        if not args.skip_postgres:
            url, drop = postgres_schema(args.postgres_url)
            try:
                fill_store_in_child(url, args.accounts, day)
                small = compare(url, "postgresql", args.accounts, day, before)
            finally:
                drop()
    if not args.skip_postgres and not args.skip_big:
        url, drop = postgres_schema(args.postgres_url)
        try:
            fill_store_in_child(url, args.big_accounts, day)
            score_big(url, args.big_accounts, day, args.shards, small and (args.accounts, *small))
        finally:
            drop()
    bench_engine(args.engine_accounts)  # last: its arrays would otherwise sit in every child's peak


if __name__ == "__main__":
    main()
