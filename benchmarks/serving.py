"""Latency of scoring ranking requests: eager PyTorch, TorchScript and ONNX Runtime, in
one process, as ratios to eager.

One model of the feed (every feature embedded and pooled, a shared bottom, two towers,
five objectives) is exported with a fused score (`sbmm.export`) to TorchScript and to
ONNX. A stream of requests, each one user's candidates, is then scored by the three
runtimes in turn, request by request, so that whatever else the machine does falls on
all three alike. Printed per runtime: the median and 99th-percentile latency of a
request, candidates scored per second, and each as a ratio to eager PyTorch (latency:
below 1 is faster; throughput: above 1). The inputs are built in each runtime's own
format before the clock starts: what a serving system hands the graph.

    python benchmarks/serving.py [--requests 300] [--candidates 1000] [--threads 1]
        [--json out.json]

`one_by_one`, `runtimes`, `measure` and `summary` are what the book's serving page
runs too.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

import sbmm
from sbmm.data import FeedConfig, FeedSimulator, Requests
from sbmm.export import Fusion, Served, load

TOWERS = [
    sbmm.Tower(
        "scene1",
        [
            sbmm.Objective("stay"),
            sbmm.Objective("stay_time", "lognormal", given="stay"),
            sbmm.Objective("click"),
        ],
        hidden=(16,),
    ),
    sbmm.Tower(
        "scene2",
        [
            sbmm.Objective("play_time", "lognormal", given="click"),
            sbmm.Objective("like", given="click"),
        ],
        hidden=(16,),
    ),
]
# the product form with the play time's exponent 1 (the fusion chapter's best form)
FUSION = Fusion(
    {"stay": 0.5, "stay_time": 0.5, "click": 1.0, "play_time": 1.0, "like": 0.5},
    form="product",
)
RUNTIMES = ("eager PyTorch", "TorchScript", "ONNX Runtime")


def one_by_one(requests: Requests) -> list[dict[str, torch.Tensor]]:
    """Each request's {feature: (C,) or (C, L) tensor}, in the order drawn."""
    c = requests.n_candidates
    return [
        requests.batch[i : i + c].features for i in range(0, len(requests.batch), c)
    ]


def runtimes(
    model: sbmm.MultiTaskModel, fusion: Fusion | None, folder: Path, threads: int = 1
) -> dict[str, tuple[Callable, Callable]]:
    """{runtime: (prepare, score)}: `prepare(features)` builds a request's inputs in
    the runtime's format, `score(inputs)` scores them (the part that is timed). The
    model is exported to `folder` as TorchScript and ONNX, each file loaded with its
    own runtime, and served eagerly by `Served`, on `threads` CPU threads."""
    torch.set_num_threads(threads)
    served = Served(model, fusion)
    names = [f.name for f in served.features]
    files = {
        "TorchScript": sbmm.export(
            model, folder / "ranker.pt", "torchscript", fusion=fusion
        ),
        "ONNX Runtime": sbmm.export(model, folder / "ranker.onnx", fusion=fusion),
    }

    def eager_inputs(features: Mapping) -> tuple[torch.Tensor, ...]:
        # ids as int64, as the files take them
        return tuple(
            features[n] if features[n].is_floating_point() else features[n].long()
            for n in names
        )

    def eager(inputs) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return served(*inputs)

    out = {"eager PyTorch": (eager_inputs, eager)}
    for name, path in files.items():
        exported = load(path, threads)
        out[name] = (exported.prepare, exported.run)
    return out


def measure(
    runners: Mapping[str, tuple[Callable, Callable]],
    stream: Sequence[Mapping],
    warmup: int = 20,
) -> dict[str, np.ndarray]:
    """{runtime: (requests,) seconds}: each request of `stream` ({feature: tensor})
    scored by every runtime in turn, after `warmup` requests each (TorchScript
    optimises its graph over its first calls); `time.perf_counter` around the score
    call alone."""
    inputs = {
        name: [prepare(r) for r in stream] for name, (prepare, _) in runners.items()
    }
    for name, (_, score) in runners.items():
        for x in inputs[name][:warmup]:
            score(x)
    seconds = {name: np.empty(len(stream)) for name in runners}
    for i in range(len(stream)):
        for name, (_, score) in runners.items():
            start = time.perf_counter()
            score(inputs[name][i])
            seconds[name][i] = time.perf_counter() - start
    return seconds


def summary(seconds: Mapping[str, np.ndarray], candidates: int) -> dict[str, dict]:
    """Per runtime: median and p99 latency (ms), candidates per second (over the whole
    stream), and each as a ratio to the first runtime's (eager)."""
    rows = {}
    for name, s in seconds.items():
        rows[name] = {
            "median ms": 1e3 * float(np.median(s)),
            "p99 ms": 1e3 * float(np.percentile(s, 99)),
            "candidates/s": candidates * len(s) / float(s.sum()),
        }
    base = next(iter(rows.values()))
    for row in rows.values():
        row["median × eager"] = row["median ms"] / base["median ms"]
        row["p99 × eager"] = row["p99 ms"] / base["p99 ms"]
        row["throughput × eager"] = row["candidates/s"] / base["candidates/s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    world = FeedSimulator(FeedConfig(n_items=max(200, args.candidates)))
    torch.manual_seed(0)
    model = sbmm.SharedBottom(world.simulate(1000, seed=0).feature_specs, TOWERS)
    requests = one_by_one(world.requests(args.requests, args.candidates, stream=1))
    with tempfile.TemporaryDirectory() as folder:
        runners = runtimes(model, FUSION, Path(folder), args.threads)
        rows = summary(measure(runners, requests), args.candidates)
    print(
        f"{args.requests} requests of {args.candidates:,} candidates, "
        f"{args.threads} thread(s), {platform.machine()}, torch {torch.__version__}"
    )
    print(
        f"{'runtime':<15}{'median ms':>10}{'p99 ms':>9}{'cand./s':>11}"
        f"{'median ×':>10}{'p99 ×':>8}{'thr. ×':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<15}{r['median ms']:>10.2f}{r['p99 ms']:>9.2f}"
            f"{r['candidates/s']:>11,.0f}{r['median × eager']:>10.2f}"
            f"{r['p99 × eager']:>8.2f}{r['throughput × eager']:>8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
