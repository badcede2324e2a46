"""What the expert diagnostics cost, as a ratio of a training step and of an epoch.

An MMoE (8 experts of 32-16, one tower per objective: click and like) on a
FeedSimulator log. Measured in one process, best of `--repeats`: one training step
(forward, losses, backward, Adam) on a batch of `--batch-size` rows; one
`expert_snapshot` on a probe of `--probe` rows (a forward pass, then one backward pass
per task); and a `fit` epoch with and without `ExpertDiagnostics` measuring every
epoch. Printed: seconds, the snapshot over the step, and the epoch's overhead.

    python benchmarks/expert_diagnostics.py [--rows 20000] [--batch-size 1024]
        [--probe 1024] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

import sbmm
from sbmm.data import FeedSimulator
from sbmm.expert_diagnostics import ExpertDiagnostics, expert_snapshot

TOWERS = [
    sbmm.Tower("feed", [sbmm.Objective("click")], hidden=(16,)),
    sbmm.Tower("video", [sbmm.Objective("like", given="click")], hidden=(16,)),
]


def best(seconds: list[float]) -> float:
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--probe", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = FeedSimulator().simulate(args.rows, seed=0)
    sbmm.seed_everything(0)
    model = sbmm.MMoE(data.feature_specs, TOWERS, n_experts=8, expert=(32, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = sbmm.Batch(data.train.features, data.train.labels)
    probe = data.valid[: args.probe]

    def step() -> None:
        rows = torch.randint(0, len(train), (args.batch_size,))
        batch = train[rows]
        total, _ = sbmm.multitask_loss(model.tower_specs, model(batch.features), batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    def snapshot() -> None:
        expert_snapshot(model, probe)

    def timed(work, n: int = 20) -> float:
        work()  # warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(n):
                work()
            times.append((time.perf_counter() - start) / n)
        return best(times)

    model.train()
    step_s = timed(step)
    snap_s = timed(snapshot)

    def epoch(callbacks) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            sbmm.fit(
                model, train, epochs=1, batch_size=args.batch_size, progress=False,
                epoch_callbacks=callbacks,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
        return best(times)

    plain = epoch(())
    measured = epoch([ExpertDiagnostics(probe)])  # measures before and after it
    print(f"threads {args.threads}, batch {args.batch_size}, probe {args.probe}")
    print(f"training step         {1e3 * step_s:8.2f} ms")
    print(f"expert snapshot       {1e3 * snap_s:8.2f} ms")
    print(f"snapshot / step       {snap_s / step_s:8.2f}")
    steps = -(-len(train) // args.batch_size)
    print(f"epoch ({steps} steps)     {plain:8.3f} s plain, {measured:.3f} s measured")
    print(f"epoch overhead        {measured / plain - 1:8.1%} (two snapshots an epoch)")


if __name__ == "__main__":
    main()
