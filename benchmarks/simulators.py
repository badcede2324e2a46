"""How fast the simulators generate data: samples (impressions) per second, best of a
few runs.

python benchmarks/simulators.py [--n 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from sbmm.data import FeedSimulator, correlated_tasks


def best_seconds(make: Callable[[], object], repeats: int) -> float:
    """The shortest wall-clock time of `repeats` calls of `make`
    (the first call also warms up)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples per run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per simulator; the best counts"
    )
    args = parser.parse_args()

    runs = {
        "FeedSimulator (default world, with split)": lambda: FeedSimulator().simulate(
            args.n, seed=0
        ),
        "correlated_tasks (d=100, m=10)": lambda: correlated_tasks(
            args.n, 0.5, d=100, seed=0
        ),
    }
    print(
        f"{args.n:,} samples per run, best of {args.repeats}, "
        f"{torch.get_num_threads()} torch threads"
    )
    for name, make in runs.items():
        seconds = best_seconds(make, args.repeats)
        print(f"{name:45s} {seconds:6.2f} s  {args.n / seconds:12,.0f} samples/s")


if __name__ == "__main__":
    main()
