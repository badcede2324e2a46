"""Training throughput of the feed model (embeddings + pooling, two towers, five
objectives).

For each batch size, three loops train for the same samples on the same device, in one
process: the seed article's DataLoader loop (its model, on dense random data: the
baseline of every ratio), a hand-written index-slicing loop over the feed model with its
losses written out, and `sbmm.fit` on the same feed model. Printed: samples/s, × the
seed loop, and fit / hand (1.00: the library costs nothing). With --variants, `sbmm.fit`
also runs with bf16 autocast and with torch.compile, so that those options are measured
before anyone turns them on by default.

    python benchmarks/feed_throughput.py [--device cpu|cuda]
        [--batch-sizes 256 1024 ...] [--variants] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time

import torch
import torch.nn.functional as F

import sbmm
from sbmm.data import FeedSimulator
from sbmm.book.article import SharedBottomMultiTaskModel, train_seed

TOWERS = [
    sbmm.Tower(
        "scene1",
        [
            sbmm.Objective("stay"),
            sbmm.Objective("stay_time", "regression", given="stay"),
            sbmm.Objective("click"),
        ],
        hidden=(32,),
    ),
    sbmm.Tower(
        "scene2",
        [
            sbmm.Objective("play_time", "regression", given="click"),
            sbmm.Objective("like", given="click"),
        ],
        hidden=(32,),
    ),
]


def hand_loop(model, data: sbmm.Batch, epochs: int, batch_size: int) -> None:
    """The reference: slicing a shuffled index, the five losses written out, Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, device = len(data), data.device
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        running = []
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            features = {k: v.index_select(0, idx) for k, v in data.features.items()}
            y = {k: v.index_select(0, idx) for k, v in data.labels.items()}
            out = model(features)
            stay, click = y["stay"] > 0, y["click"] > 0

            def masked(loss, keep):
                return torch.where(keep, loss, 0.0).sum() / keep.sum().clamp_min(1)

            loss = (
                F.binary_cross_entropy_with_logits(out["stay"], y["stay"])
                + masked(
                    F.mse_loss(out["stay_time"], y["stay_time"], reduction="none"), stay
                )
                + F.binary_cross_entropy_with_logits(out["click"], y["click"])
                + masked(
                    F.mse_loss(out["play_time"], y["play_time"], reduction="none"),
                    click,
                )
                + masked(
                    F.binary_cross_entropy_with_logits(
                        out["like"], y["like"], reduction="none"
                    ),
                    click,
                )
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running.append(loss.detach())
        torch.stack(running).mean().item()


def synchronised(run, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(
    data: sbmm.Batch,
    specs,
    batch_size: int,
    samples: int,
    repeats: int,
    device: torch.device,
    variants: bool = False,
) -> dict[str, float]:
    n = min(len(data), max(samples, batch_size * 4))
    part = data[:n].to(device)
    epochs = max(1, samples // n)
    sbmm.seed_everything(0)
    feed_model = sbmm.SharedBottom(specs, TOWERS).to(device)
    X, y1, y2 = (torch.randn(n, d) for d in (10, 3, 2))
    seed_model = SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
    runs = {
        "seed DataLoader loop": lambda: train_seed(
            copy.deepcopy(seed_model), X, y1, y2, epochs=epochs, batch_size=batch_size
        ),
        "hand-written loop": lambda: hand_loop(
            copy.deepcopy(feed_model), part, epochs, batch_size
        ),
        "sbmm.fit": lambda: sbmm.fit(
            copy.deepcopy(feed_model),
            part,
            epochs=epochs,
            batch_size=batch_size,
            device=device,
            progress=False,
        ),
    }
    if variants:
        for name, option in (
            ("sbmm.fit bf16", {"precision": "bf16"}),
            ("sbmm.fit compiled", {"compile": True}),
        ):
            runs[name] = lambda option=option: sbmm.fit(
                copy.deepcopy(feed_model),
                part,
                epochs=epochs,
                batch_size=batch_size,
                device=device,
                progress=False,
                **option,
            )
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], synchronised(run, device))
    return {name: n * epochs / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=str(sbmm.default_device()))
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384, 65536]
    )
    parser.add_argument(
        "--samples", type=int, default=262_144, help="samples trained per timed run"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per loop; the best is kept"
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also time fit with bf16 autocast and torch.compile",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = FeedSimulator().simulate(
        max(args.samples, 4 * max(args.batch_sizes)), seed=0
    )
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__} on {name}")
    header = (
        f"{'batch':>6}  {'loop':<22} {'samples/s':>12} {'× seed loop':>12} "
        f"{'fit / hand':>11}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for batch_size in args.batch_sizes:
        rates = measure(
            data.batch,
            data.feature_specs,
            batch_size,
            args.samples,
            args.repeats,
            device,
            args.variants,
        )
        seed = rates["seed DataLoader loop"]
        for loop, rate in rates.items():
            vs_hand = (
                rate / rates["hand-written loop"]
                if loop.startswith("sbmm.fit")
                else None
            )
            print(
                f"{batch_size:>6}  {loop:<22} {rate:>12,.0f} {rate / seed:>12.2f} "
                f"{'' if vs_hand is None else f'{vs_hand:.2f}':>11}"
            )
            rows.append(
                {
                    "batch_size": batch_size,
                    "loop": loop,
                    "samples_per_s": rate,
                    "vs_seed_loop": rate / seed,
                    "fit_vs_hand": vs_hand,
                }
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"device": name, "torch": torch.__version__, "rows": rows}, f, indent=2
            )


if __name__ == "__main__":
    main()
