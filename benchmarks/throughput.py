"""Training throughput: the seed article's DataLoader loop, a hand-written index-slicing
loop, and `sbmm.fit`.

All three train the seed's model (10 → 64-32-16 → heads of 3 and 2, MSE, Adam 1e-3) on
the same data for the same epochs, in one process, on the CPU, on `--threads` threads
(1 by default). The three are run one after the other, `--repeats` times; the time is
the process's CPU time, which on one thread is the run's time. Printed: samples per
second (the best run of each), and ratios against the seed's loop; the last column is
`sbmm.fit` against the hand-written loop (its abstractions' cost: 1.00 means none),
the median over the repeats of the ratio within each repeat, so that a shared
machine's slow minutes, which slow both runs of a repeat, cancel out.

    python benchmarks/throughput.py [--repeats 15] [--samples-per-run N] [--threads 1]
                                    [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

import sbmm
from sbmm.book.article import SharedBottomMultiTaskModel, as_shared_bottom, train_seed


def hand_loop(
    model: SharedBottomMultiTaskModel, X, y1, y2, epochs: int, batch_size: int
) -> None:
    """The reference: in-memory tensors batched by slicing a shuffled index, no
    DataLoader."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(X)
    for _ in range(epochs):
        order = torch.randperm(n)
        running = []
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            out1, out2 = model(X.index_select(0, idx))
            loss = F.mse_loss(out1, y1.index_select(0, idx)) + F.mse_loss(
                out2, y2.index_select(0, idx)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running.append(loss.detach())
        torch.stack(running).mean().item()


def timed(run) -> float:
    """The CPU seconds `run()` takes."""
    start = time.process_time()
    run()
    return time.process_time() - start


def measure(
    batch_size: int, n: int, epochs: int, repeats: int
) -> tuple[dict[str, float], float]:
    """Each loop's best samples per second, and the median over the repeats of
    fit's time / the hand loop's time in the same repeat, inverted (fit / hand)."""
    torch.manual_seed(0)
    X, y1, y2 = torch.randn(n, 10), torch.randn(n, 3), torch.randn(n, 2)
    data = sbmm.Batch({"x": X}, {"task1": y1, "task2": y2})
    base = SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
    runs = {
        "seed DataLoader loop": lambda: train_seed(
            copy.deepcopy(base), X, y1, y2, epochs=epochs, batch_size=batch_size
        ),
        "hand-written slicing loop": lambda: hand_loop(
            copy.deepcopy(base), X, y1, y2, epochs, batch_size
        ),
        "sbmm.fit": lambda: sbmm.fit(
            as_shared_bottom(base),
            data,
            epochs=epochs,
            batch_size=batch_size,
            device="cpu",
            progress=False,
        ),
    }
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            seconds[name].append(timed(run))
    fit_vs_hand = statistics.median(
        hand / fit
        for hand, fit in zip(seconds["hand-written slicing loop"], seconds["sbmm.fit"])
    )
    # samples per second
    rates = {name: n * epochs / min(times) for name, times in seconds.items()}
    return rates, fit_vs_hand


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--samples-per-run",
        type=int,
        default=65_536,
        help="samples × epochs in one timed run",
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    header = (
        f"{'batch':>6}  {'loop':<26} {'samples/s':>12} {'× seed loop':>12} "
        f"{'fit / hand':>11}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for batch_size in (32, 4096):
        n = min(args.samples_per_run, max(batch_size * 16, 4096))
        epochs = max(1, args.samples_per_run // n)
        rates, fit_vs_hand = measure(batch_size, n, epochs, args.repeats)
        results[batch_size] = {"samples_per_s": rates, "fit_vs_hand": fit_vs_hand}
        seed = rates["seed DataLoader loop"]
        for name, rate in rates.items():
            vs_hand = f"{fit_vs_hand:.2f}" if name == "sbmm.fit" else ""
            print(
                f"{batch_size:>6}  {name:<26} {rate:>12,.0f} {rate / seed:>12.2f} "
                f"{vs_hand:>11}"
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {"torch": torch.__version__, "threads": args.threads,
                 "repeats": args.repeats, "batch": results},
                file, indent=1,
            )  # fmt: skip


if __name__ == "__main__":
    main()
