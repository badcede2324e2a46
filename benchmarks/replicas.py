"""Many seeds for the price of few: K replicas in one fit_replicas pass against K fits.

The feed model of the default profile: a FeedSimulator log of the default world and the
profile's size; SharedBottom 64-32-16 with the five objectives as the shared-bottom
chapter declares them (times in units of about their mean, masked by their parent,
weight 0.1; like masked by click; one hidden layer of 16 per tower). For each batch size
and K, four runs in one process, each with its models' building: one `fit` (seed 0),
K separate `fit`s (seeds 0..K-1), `fit_replicas` with the K seeds, and the work floor:
one `fit` taking the replicas' steps with their rows, K · batch rows a step (K times
the batch for K times the epochs), which does the replicas' arithmetic in one model.
Best of `--repeats`, taken in turns, in wall-clock and in CPU (process) time.
Printed: seconds, the replicas' time over one fit's and over the K fits', and the
floor's over one fit's: where the floor itself is far above one fit, the replicas are
bound by arithmetic, and only more compute (threads, a GPU) brings them nearer one fit.

    python benchmarks/replicas.py [--replicas 1 4 16] [--batch-sizes 256 2048]
        [--epochs 2] [--repeats 3] [--threads 1] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

import sbmm
from sbmm.book import PROFILES
from sbmm.data import FeedSimulator
from sbmm.train.replicas import fit_replicas

STAY_UNIT, PLAY_UNIT = 3.0, 20.0  # seconds: each time's scale (about its mean)
TOWERS = [
    sbmm.Tower(
        "scene1",
        [
            sbmm.Objective("stay"),
            sbmm.Objective(
                "stay_time", "regression", label="stay_time_u", given="stay", weight=0.1
            ),
            sbmm.Objective("click"),
        ],
        hidden=(16,),
    ),
    sbmm.Tower(
        "scene2",
        [
            sbmm.Objective(
                "play_time",
                "regression",
                label="play_time_u",
                given="click",
                weight=0.1,
            ),
            sbmm.Objective("like", given="click"),
        ],
        hidden=(16,),
    ),
]


def feed_log(n: int) -> tuple[sbmm.Batch, list]:
    """The training part of an `n`-impression default-world log, with the unit-scaled
    times the chapter trains on, and the feature declarations."""
    data = FeedSimulator().simulate(n, seed=0)
    y = data.train.labels
    units = {
        "stay_time_u": y["stay_time"] / STAY_UNIT,
        "play_time_u": y["play_time"] / PLAY_UNIT,
    }
    return sbmm.Batch(data.train.features, {**y, **units}), data.feature_specs


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """The wall-clock and CPU seconds of one call of `run`."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    train: sbmm.Batch,
    features,
    k: int,
    batch_size: int,
    epochs: int,
    repeats: int,
    device: str,
) -> dict[str, tuple[float, float]]:
    """{run: (wall s, CPU s)}, best of `repeats`, for one fit, k fits, k replicas and
    the floor, taken in turns so that a busy spell of a shared machine slows all."""
    options = {
        "epochs": epochs,
        "batch_size": batch_size,
        "device": device,
        "progress": False,
    }

    def build():
        return sbmm.SharedBottom(features, TOWERS, bottom=(64, 32, 16))

    def fits(seeds):
        for seed in seeds:
            sbmm.seed_everything(seed)
            sbmm.fit(build(), train, seed=seed, **options)

    fit_replicas(build, train[:batch_size], seeds=range(k), **options)  # warm up vmap
    floor = {**options, "batch_size": k * batch_size, "epochs": k * epochs}
    runs = {
        "one fit": lambda: fits([0]),
        "K fits": lambda: fits(range(k)),
        "replicas": lambda: fit_replicas(build, train, seeds=range(k), **options),
    }
    if k * batch_size <= len(train):  # else a step of K · batch rows does not exist
        runs["floor"] = lambda: sbmm.fit(build(), train, seed=0, **floor)
    times = [{name: timed(run) for name, run in runs.items()} for _ in range(repeats)]
    return {name: tuple(map(min, zip(*(t[name] for t in times)))) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    profile = PROFILES["default"]
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[profile.batch_size]
    )
    parser.add_argument(
        "--samples", type=int, default=profile.n_samples, help="log size"
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs; the best counts"
    )
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, features = feed_log(args.samples)
    cpu = platform.processor() or platform.machine()
    name = f"{cpu} CPU, {torch.get_num_threads()} thread(s)"
    if args.device != "cpu":
        name = torch.cuda.get_device_name(torch.device(args.device))
    print(
        f"torch {torch.__version__} on {name}; {len(train):,} training rows, "
        f"{args.epochs} epoch(s) per run, best of {args.repeats}"
    )
    header = (
        f"{'batch':>6} {'K':>3}  {'1 fit s':>8} {'K fits s':>9} {'replicas s':>10}"
        f"  {'/ 1 fit':>8} {'/ K fits':>8}  {'CPU: / 1 fit':>12} {'/ K fits':>8}"
        f"  {'floor / 1 fit':>13}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for batch_size in args.batch_sizes:
        for k in args.replicas:
            t = measure(
                train, features, k, batch_size, args.epochs, args.repeats, args.device
            )
            (one, one_cpu), (many, many_cpu), (rep, rep_cpu) = list(t.values())[:3]
            floor = f"{t['floor'][0] / one:.2f}" if "floor" in t else "-"
            print(
                f"{batch_size:>6} {k:>3}  {one:>8.2f} {many:>9.2f} {rep:>10.2f}"
                f"  {rep / one:>8.2f} {rep / many:>8.2f}"
                f"  {rep_cpu / one_cpu:>12.2f} {rep_cpu / many_cpu:>8.2f}  {floor:>13}"
            )
            rows.append(
                {
                    "batch_size": batch_size,
                    "replicas": k,
                    **{
                        f"{run} {kind}": seconds
                        for run, pair in t.items()
                        for kind, seconds in zip(("wall s", "cpu s"), pair)
                    },
                }
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": name,
                    "torch": torch.__version__,
                    "epochs": args.epochs,
                    "rows": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
