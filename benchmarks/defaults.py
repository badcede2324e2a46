"""Which defaults help a model finish training: output biases started at the best
constant (`MultiTaskModel.init_output_bias`) or at PyTorch's draw, and embeddings drawn
from N(0, 1) or N(0, 0.01²), on the feed simulator and on Census-Income.

Every arm trains the same seeds with the same early stopping and budget; per arm it
prints the epochs run, the best epoch, the best validation loss (and, for Census, the
test AUC of income), each as a mean with its 95% interval, and the paired comparison
with the baseline (PyTorch's bias, N(0, 1) embeddings, the library's defaults). This
measures convergence and quality, not speed.

    python benchmarks/defaults.py --seeds 8 \
        --json benchmarks/results/cpu/defaults.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import sbmm
from sbmm.data import FeedSimulator

torch.set_num_threads(1)

ARMS = {  # name: (init_output_bias, embedding_std)
    "defaults": (False, 1.0),
    "bias at base rate": (True, 1.0),
    "embeddings N(0, 0.01²)": (False, 0.01),
    "both": (True, 0.01),
}


def feed(seeds):
    data = FeedSimulator().simulate(60_000, seed=0)
    towers = [
        sbmm.Tower(
            "scene1",
            [
                sbmm.Objective("stay"),
                sbmm.Objective("stay_time", "regression", given="stay"),
                sbmm.Objective("click", given="stay"),
            ],
            hidden=(16,),
        ),
        sbmm.Tower("scene2", [sbmm.Objective("like", given="click")], hidden=(16,)),
    ]
    stop = sbmm.EarlyStopping(patience=3)
    run = dict(seeds=seeds, epochs=40, batch_size=1024, lr=3e-3, early_stopping=stop)
    out = {}
    for name, (init, std) in ARMS.items():

        def build():
            model = sbmm.SharedBottom(data.feature_specs, towers, embedding_std=std)
            return model.init_output_bias(data.train) if init else model

        replicas = sbmm.fit_replicas(build, data.train, data.valid, **run)
        out[name] = summary(replicas)
    return out


def census(seeds):
    tables = sbmm.load_census()
    encoder = sbmm.TableEncoder(tables.schema, dim=4).fit(tables.train)
    train, valid, test = (
        encoder.transform(t) for t in (tables.train, tables.valid, tables.test)
    )
    tasks = tables.schema.labels
    towers = [sbmm.Tower(t, [sbmm.Objective(t)], hidden=(8,)) for t in tasks]
    stop = sbmm.EarlyStopping(patience=2, objective=tasks[0], metric="auc")
    run = dict(seeds=seeds, epochs=30, batch_size=2048, lr=1e-2, early_stopping=stop)
    out = {}
    for name, (init, std) in ARMS.items():

        def build():
            model = sbmm.MMoE(
                encoder.features, towers, n_experts=4, expert=(16,), embedding_std=std
            )
            return model.init_output_bias(train) if init else model

        replicas = sbmm.fit_replicas(build, train, valid, **run)
        auc = [sbmm.evaluate(m, test)[tasks[0]]["auc"] for m in replicas.models]
        out[name] = {**summary(replicas), "test_auc": auc}
    return out


def summary(replicas) -> dict[str, list[float]]:
    """Per seed: epochs run, best epoch, best validation total, first epoch's."""
    h = replicas.histories
    return {
        "epochs": [x.epochs for x in h],
        "best_epoch": [x.best_epoch for x in h],
        "best_valid": [min(x.valid_loss["total"]) for x in h],
        "first_valid": [x.valid_loss["total"][0] for x in h],
    }


def report(world: str, arms: dict[str, dict[str, list[float]]]) -> None:
    base = arms["defaults"]
    print(f"\n{world}")
    for name, scores in arms.items():
        cells = []
        for key, values in scores.items():
            low, high = sbmm.mean_interval(values) if len(values) > 1 else (0, 0)
            cells.append(f"{key} {np.mean(values):.4g} [{low:.4g}, {high:.4g}]")
        print(f"  {name:<24} " + "; ".join(cells))
        if name != "defaults":
            for key in scores:
                better = key == "test_auc"
                c = sbmm.compare(
                    scores[key], base[key], names=(name, "defaults"),
                    higher_is_better=better,
                )  # fmt: skip
                print(f"    {key}: {c.format(4)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seeds = range(args.seeds)
    results = {"feed": feed(seeds), "census": census(seeds)}
    for world, arms in results.items():
        report(world, arms)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
