"""Host synchronisations of `sbmm.fit` on a GPU: there should be a few per epoch, none
per step.

Trains the feed model for two epochs under `torch.cuda.set_sync_debug_mode("warn")`,
which warns at every operation that makes the host wait for the GPU, and counts the
warnings. Prints the count against the number of steps, and exits with an error if there
is one or more per step. Needs CUDA (prints so and exits otherwise).

    python benchmarks/gpu_sync.py [--batch-size 1024] [--samples 262144]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

import sbmm
from sbmm.data import FeedSimulator

sys.path.insert(0, str(Path(__file__).parent))
from feed_throughput import TOWERS  # noqa: E402 (the throughput benchmark's model)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--samples", type=int, default=262_144)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_sync: no CUDA device; nothing to measure")
        return
    data = FeedSimulator().simulate(args.samples, seed=0)
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom(data.feature_specs, TOWERS).cuda()
    train, valid = data.train.to("cuda"), data.valid.to("cuda")
    # warm-up
    sbmm.fit(model, train, valid, epochs=1, batch_size=args.batch_size, progress=False)
    epochs = 2
    steps = epochs * -(-len(train) // args.batch_size)
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sbmm.fit(
            model,
            train,
            valid,
            epochs=epochs,
            batch_size=args.batch_size,
            progress=False,
        )
    torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    print(
        f"gpu_sync: {syncs} host synchronisations in {epochs} epochs of "
        f"{steps // epochs} steps (with validation), {syncs / steps:.3f} per step"
    )
    if syncs >= steps:
        sys.exit("gpu_sync: fit synchronises with the GPU at every step")


if __name__ == "__main__":
    main()
