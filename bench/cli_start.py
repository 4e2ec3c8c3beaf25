"""Benchmark the start of the command line: `cse --help` next to a bare `python -c pass` (target: under 0.5 s).

    python -m bench.cli_start            # 10 runs each; prints the median and the best
    python -m bench.cli_start --runs 20

Each run is a fresh process, as a user's shell starts it; the difference to `python -c pass` is what importing the
CLI costs (the commands import pandas, SQLAlchemy and the SDKs only when they run).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cse --help": [sys.executable, "-m", "app", "--help"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timings(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of `runs` fresh processes of `command` (output discarded). CPU time says what
    the start costs even on a busy machine, where the wall clock mostly measures waiting for a core."""
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_before = time.perf_counter(), _children_cpu()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - cpu_before)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for name, command in COMMANDS.items():
        wall, cpu = timings(command, args.runs)
        print(f"{name:<16} wall median {statistics.median(wall):.3f} s, best {min(wall):.3f} s; "
              f"CPU median {statistics.median(cpu):.3f} s  ({args.runs} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
