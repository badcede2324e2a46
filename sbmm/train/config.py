"""A training run described by a TOML file, for `python -m sbmm.train` (no notebook needed).

    [data]      simulator = "feed" | "correlated_tasks"; n; seed; knobs = {...} (FeedSimulator knobs,
                or correlated_tasks' p, d, m, c, noise)
    [model]     architecture = "SharedBottom" | "SingleTask" | "MMoE" | "PLE"; options = {...} (its
                keyword arguments, e.g. bottom = [64, 32, 16] or n_experts = 4)
    [[towers]]  name; hidden; weight; objectives = [{name, kind, weight, label, mask, given, space}, ...]
    [train]     epochs; batch_size; lr; seed; weighting = "Static" | "Uncertainty" | "GradNorm" | "DWA"
                | "PCGrad"; precision; compile; checkpoint; resume; keep_best

`configs/feed.toml` is a complete example.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .. import models, weighting
from ..data import Batch, FeedSimulator, correlated_tasks
from ..inputs import Dense
from ..objectives import Objective, Tower
from ..profile import seed_everything

__all__ = ["Run", "load_run"]

ARCHITECTURES = {"SharedBottom": models.SharedBottom, "SingleTask": models.SingleTask, "MMoE": models.MMoE, "PLE": models.PLE}
STRATEGIES = {name: getattr(weighting, name) for name in ("Static", "Uncertainty", "GradNorm", "DWA", "PCGrad")}
TRAIN_KEYS = {"epochs", "batch_size", "lr", "seed", "precision", "compile", "checkpoint", "resume", "keep_best"}


@dataclass
class Run:
    """Everything a run needs: data splits, the model, and `fit`'s keyword arguments."""

    train: Batch
    valid: Batch
    test: Batch
    model: models.MultiTaskModel
    fit_options: dict


def _section(config: dict, name: str) -> dict:
    if name not in config or not isinstance(config[name], dict):
        raise ValueError(f"the config needs a [{name}] table")
    return config[name]


def _data(spec: dict) -> tuple[Batch, Batch, Batch, list]:
    simulator, n, seed = spec.get("simulator"), spec.get("n"), spec.get("seed", 0)
    knobs = dict(spec.get("knobs", {}))
    if simulator == "feed":
        data = FeedSimulator(**knobs).simulate(n, seed=seed)
        return data.train, data.valid, data.test, data.feature_specs
    if simulator == "correlated_tasks":
        batch = correlated_tasks(n, knobs.pop("p", 0.5), seed=seed, **knobs)
        train, valid, test = batch.split((0.8, 0.1, 0.1), seed=seed)
        return train, valid, test, [Dense("x", batch.features["x"].shape[1])]
    raise ValueError(f"[data] simulator must be 'feed' or 'correlated_tasks', got {simulator!r}")


def load_run(path: str | Path) -> Run:
    """Read a TOML run description and build its data and model; a ValueError names what is wrong."""
    config = tomllib.loads(Path(path).read_text())
    train, valid, test, features = _data(_section(config, "data"))
    model_spec = _section(config, "model")
    architecture = model_spec.get("architecture", "SharedBottom")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"[model] architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    if not config.get("towers"):
        raise ValueError("the config needs at least one [[towers]] table")
    towers = [
        Tower(t["name"], [Objective(**o) for o in t.get("objectives", [])], hidden=t.get("hidden", (32,)), weight=t.get("weight", 1.0))
        for t in config["towers"]
    ]
    train_spec = dict(config.get("train", {}))
    if train_spec.get("seed") is not None:
        seed_everything(train_spec["seed"])  # the initial weights follow the run's seed too
    model = ARCHITECTURES[architecture](features, towers, **model_spec.get("options", {}))
    strategy = train_spec.pop("weighting", "Static")
    if strategy not in STRATEGIES:
        raise ValueError(f"[train] weighting must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    unknown = set(train_spec) - TRAIN_KEYS
    if unknown:
        raise ValueError(f"[train] has unknown keys {sorted(unknown)}; known: {sorted(TRAIN_KEYS)}")
    return Run(train, valid, test, model, {**train_spec, "weighting": STRATEGIES[strategy]()})
