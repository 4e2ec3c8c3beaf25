"""Benchmark the start of the command line: `cse --help` next to a bare `python -c pass` (target: under 0.5 s).

    python -m bench.cli_start            # 10 runs each; prints the median and the best
    python -m bench.cli_start --runs 20

Each run is a fresh process, as a user's shell starts it; the difference to `python -c pass` is what importing the
CLI costs (the commands import pandas, SQLAlchemy and the SDKs only when they run).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cse --help": [sys.executable, "-m", "app", "--help"],
}


def timings(command: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` fresh processes of `command` (output discarded)."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for name, command in COMMANDS.items():
        seconds = timings(command, args.runs)
        print(f"{name:<16} median {statistics.median(seconds):.3f} s  best {min(seconds):.3f} s  ({args.runs} runs)")


if __name__ == "__main__":
    main()
