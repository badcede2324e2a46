"""What each weighting strategy costs per training step, as a ratio to static weights.

Every strategy trains the feed model (its features, two towers, five objectives) for
the same steps on the same data, as a shared bottom and as an MMoE of the library's
defaults, with `sbmm.fit` on the CPU on `--threads` threads (1 by default). Each repeat
trains every strategy once, Static first; a strategy's cost is the median over the
repeats of its time / Static's time in the same repeat, so that a shared machine's slow
minutes, which slow both runs of a repeat, cancel out. The time is the process's CPU
time, which on one thread is the run's time. Printed per model: milliseconds per step
(the best repeat), the ratio to Static, and what each step computes beyond Static's
one backward pass: the strategies that combine the objectives' gradients take one
backward pass per objective through the shared part, then one through the towers.

    python benchmarks/weighting_cost.py [--repeats 7] [--impressions 20000]
        [--batch-size 1024] [--threads 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from feed_throughput import TOWERS  # the feed's five objectives, as benchmarked there

import sbmm
from sbmm.data import FeedSimulator
from sbmm.weighting import (
    DWA,
    FAMO,
    MGDA,
    RLW,
    CAGrad,
    GradNorm,
    MetaBalance,
    NashMTL,
    PCGrad,
    Static,
    Uncertainty,
)

STRATEGIES = {
    "Static": Static,
    "DWA": DWA,
    "Uncertainty": Uncertainty,
    "RLW": RLW,
    "FAMO": FAMO,
    "GradNorm": GradNorm,
    "PCGrad": PCGrad,
    "MGDA": MGDA,
    "CAGrad": CAGrad,
    "NashMTL": NashMTL,
    "MetaBalance": MetaBalance,
}

# What a step computes beyond Static's one backward pass.
EXTRA = {
    "GradNorm": "K gradient norms of the last shared layer, differentiated",
    "PCGrad": "K backward passes, then the towers'",
    "MGDA": "K backward passes, then the towers'",
    "CAGrad": "K backward passes, then the towers'",
    "NashMTL": "K backward passes, then the towers'",
    "MetaBalance": "K backward passes, then the towers'",
}

MODELS = {
    "SharedBottom": lambda features: sbmm.SharedBottom(features, TOWERS),
    "MMoE": lambda features: sbmm.MMoE(features, TOWERS),
}


def timed(run) -> float:
    """The CPU seconds `run()` takes."""
    start = time.process_time()
    run()
    return time.process_time() - start


def measure(
    model: sbmm.MultiTaskModel, train: sbmm.Batch, batch_size: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Per strategy: the best repeat's milliseconds per step, and the median over the
    repeats of its time / Static's in the same repeat."""
    steps = -(-len(train) // batch_size)

    def run(strategy):
        return lambda: sbmm.fit(
            copy.deepcopy(model), train, epochs=1, batch_size=batch_size,
            device="cpu", progress=False, weighting=strategy(),
        )  # fmt: skip

    for strategy in STRATEGIES.values():  # warm up every code path once
        run(strategy)()
    seconds = {name: [] for name in STRATEGIES}
    for _ in range(repeats):
        for name, strategy in STRATEGIES.items():
            seconds[name].append(timed(run(strategy)))
    return {
        name: {
            "ms_per_step": 1000 * min(times) / steps,
            "ratio": statistics.median(t / s for t, s in zip(times, seconds["Static"])),
        }
        for name, times in seconds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--impressions", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = FeedSimulator().simulate(args.impressions, seed=0)
    train = sbmm.Batch(data.train.features, data.train.labels)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
        f"{len(train):,} training rows, batch {args.batch_size}, "
        f"{args.repeats} repeats; K = {sum(len(t.objectives) for t in TOWERS)} "
        "objectives"
    )
    results = {}
    for model_name, build in MODELS.items():
        torch.manual_seed(0)
        model = build(data.feature_specs)
        results[model_name] = measure(model, train, args.batch_size, args.repeats)
        header = f"{model_name:<13} {'ms/step':>8} {'× Static':>9}  beyond one backward"
        print(f"\n{header}\n{'-' * len(header)}")
        for name, row in results[model_name].items():
            line = f"{name:<13} {row['ms_per_step']:>8.2f} {row['ratio']:>9.2f}"
            print(f"{line}  {EXTRA[name]}" if name in EXTRA else line)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {"torch": torch.__version__, "threads": args.threads,
                 "repeats": args.repeats, "impressions": args.impressions,
                 "batch_size": args.batch_size, "models": results},
                file, indent=1,
            )  # fmt: skip


if __name__ == "__main__":
    main()
