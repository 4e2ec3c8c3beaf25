"""Benchmark the client CPU of Intercom company updates: the pusher's PUT without a response model against the
SDK's typed `companies.update`, on one thread, to the Intercom sandbox in a process of its own.

    python -m bench.intercom_push [--calls 300] [--rounds 2]

Each round times `--calls` updates of a custom attribute each way (alternated); printed per call: client CPU
(this process only, so the sandbox's work is not counted) and wall.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import date
from multiprocessing.connection import Connection

from app.demo.book import BookSpec, generate_book
from app.settings import Settings
from connectors.intercom.push import IntercomPusher
from connectors.push import PushRow
from connectors.registry import connector
from sandbox.intercom import start_sandbox


def _serve(calls: int, pipe: Connection) -> None:
    """The sandbox's process: a workspace seeded from a small book; sends its settings and company ids."""
    book = generate_book(BookSpec(seed=7, active_accounts=max(calls, 100), days=60, as_of=date.today()))
    sandbox = start_sandbox(book)
    companies = [company["id"] for company in sandbox.state.workspace.companies.values()][:calls]
    pipe.send((sandbox.settings_env(), companies))
    with suppress(EOFError):  # until the bench closes its end
        pipe.recv()
    sandbox.stop()


def _per_call(step: Callable[[str, int], object], companies: list[str]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i, company in enumerate(companies):
        step(company, i)
    return (time.process_time() - cpu) / len(companies) * 1000, (time.perf_counter() - wall) / len(companies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.calls, there), daemon=True)
    server.start()
    env, companies = here.recv()
    pusher = connector("intercom").build_pusher(Settings.from_env(env))
    assert isinstance(pusher, IntercomPusher)
    client = pusher.client

    def pushed(company: str, i: int) -> None:
        row = PushRow(i, {"external_id": company, "fields": {"seats": 10 + i % 40}})
        result = pusher._update_company(row)
        assert result.ok, result.error

    def typed(company: str, i: int) -> None:
        attributes = {"seats": 10 + i % 40}
        client.call(lambda: client.sdk.companies.update(company, request={"custom_attributes": attributes}))

    for round_ in range(1, args.rounds + 1):
        for name, step in (("SDK typed update", typed), ("pusher (PUT, no model)", pushed)):
            cpu, wall = _per_call(step, companies)
            print(
                f"round {round_}, {name}: {cpu:.2f} ms client CPU, {wall:.2f} ms wall a call ({len(companies)} calls)"
            )
    here.close()
    server.join(timeout=10)


if __name__ == "__main__":
    main()
