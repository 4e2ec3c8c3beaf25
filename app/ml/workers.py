"""The model refresh's worker processes: point-in-time snapshots and model fits, several at a time on the cores.

A snapshot is a few SQLite or PostgreSQL aggregates and a few dozen pandas steps on a thousand accounts, and a
fit on the panel (tens of thousands of rows) is mostly scikit-learn's Python around short compiled loops: both
hold the GIL most of the time, so two threads of one process ran them at ~1.2 times the speed of one (the
demo's panel: 6.4 s of CPU in 5.4 s of wall). Processes run them side by side for real.

The processes come from a fork server (`multiprocessing`'s "forkserver"), never a fork of the caller: the caller
may hold threads (a web server, RQ's, the demo's sandboxes) and an initialised OpenMP pool, which a forked child
inherits half-copied. The fork server imports the model code once (PRELOAD) and forks each worker from that clean
state, so a worker starts in milliseconds; `warm_up` starts it ahead of need (its imports take ~1.5 s of CPU).
Each worker opens its own engine from the store's URL (a connection never crosses a process boundary).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from multiprocessing import forkserver
from typing import Any

from sqlalchemy import Engine

# What the fork server imports before forking workers: everything a snapshot or a fit needs, and the main module
# (the `cse` script), which a worker would otherwise import again itself, as multiprocessing does for spawned ones.
PRELOAD = ["__main__", "app.ml.train"]


def process_context():
    """The "forkserver" context, its server preloading PRELOAD (see the module docstring)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up() -> None:
    """Start the fork server now (its imports run in its own process) so the first refresh does not wait for it."""
    process_context()
    forkserver.ensure_running()


class InProcess(Executor):
    """An Executor that runs each call at once in the caller: the model work without worker processes."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the future, as a pool would
            future.set_exception(error)
        return future


def pool_or_here(pool: Executor | None) -> Executor:
    """`pool`, or an executor that runs each call at once in this process (model_workers(0))."""
    return pool or InProcess()


@contextmanager
def model_workers(workers: int) -> Iterator[Executor | None]:
    """`workers` processes for snapshots and fits (see the module docstring); with 0, None: all in this process."""
    if workers <= 0:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=process_context())
    try:
        yield pool
    finally:  # work nobody waits for any more (a refused bundle's fits) is not started
        pool.shutdown(wait=True, cancel_futures=True)


def store_url(engine: Engine) -> str:
    """The URL a worker process opens the same store with (password included: it never leaves this machine)."""
    return engine.url.render_as_string(hide_password=False)


@cache
def worker_engine(url: str) -> Engine:
    """This process's engine for `url`, made once (app.store.db.make_engine: WAL and pragmas on SQLite)."""
    from app.store.db import make_engine

    return make_engine(url)
