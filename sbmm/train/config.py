"""A training run described by a TOML file, for `python -m sbmm.train` (no notebook).

    [data]      simulator = "feed" | "correlated_tasks"; n; seed; knobs = {...}
                (FeedSimulator knobs, or correlated_tasks' p, d, m, c, noise)
    [model]     architecture = a class of `sbmm.models` (SharedBottom, SingleTask, MMoE,
                PLE, ...); options = {...} (its keyword arguments, e.g.
                bottom = [64, 32, 16] or n_experts = 4)
    [[towers]]  name; hidden; weight;
                objectives = [{name, kind, weight, label, mask, given, space}, ...]
    [train]     epochs; batch_size; lr; seed; weighting = a class of `sbmm.weighting`
                (Static, Uncertainty, GradNorm, DWA, PCGrad, ...); precision; compile;
                checkpoint; resume; keep_best

A relative checkpoint path is taken from the config file's folder, so a run writes
the same file whichever directory it starts in. Architectures and strategies are
looked up in `sbmm.models` and `sbmm.weighting`: a `MultiTaskModel` or `Weighting`
subclass exported there can be named here with no change to this file. Every section,
key, name and option is checked before any data is drawn; an error names the config
file, the section and the key, and lists the known ones. `configs/feed.toml` is a
complete example.
"""

from __future__ import annotations

import inspect
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType

from .. import models, weighting
from ..data import Batch, FeedConfig, FeedSimulator, correlated_tasks
from ..inputs import Dense
from ..objectives import Objective, Tower
from ..runtime import seed_everything

__all__ = ["Run", "architectures", "load_run", "strategies"]

SECTIONS = ("data", "model", "towers", "train")
SIMULATORS = ("feed", "correlated_tasks")
DATA_KEYS = ("simulator", "n", "seed", "knobs")
MODEL_KEYS = ("architecture", "options")
TRAIN_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "weighting",
    "precision",
    "compile",
    "checkpoint",
    "resume",
    "keep_best",
)


@dataclass
class Run:
    """Everything a run needs: data splits, the model, and `fit`'s keyword arguments."""

    train: Batch
    valid: Batch
    test: Batch
    model: models.MultiTaskModel
    fit_options: dict


def _subclasses(module: ModuleType, base: type) -> dict[str, type]:
    """{name: class} for every public name of `module` bound to a subclass of `base`
    (`base` itself excluded)."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and isinstance(value, type)
        and issubclass(value, base)
        and value is not base
    }


def architectures() -> dict[str, type[models.MultiTaskModel]]:
    """The architectures a config may name, {name: class}: every `MultiTaskModel`
    subclass that `sbmm.models` exports."""
    return _subclasses(models, models.MultiTaskModel)


def strategies() -> dict[str, type[weighting.Weighting]]:
    """The weighting strategies a config may name, {name: class}: every `Weighting`
    subclass that `sbmm.weighting` holds."""
    return _subclasses(weighting, weighting.Weighting)


def _check_keys(where: str, table: dict, known) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {unknown}; known: {', '.join(known)}"
        )


def _table(config: dict, name: str) -> dict:
    if not isinstance(config.get(name), dict):
        raise ValueError(f"the config needs a [{name}] table")
    return config[name]


def _choice(where: str, name: object, known: dict[str, type]) -> type:
    """The class `known` holds under `name`; a ValueError listing the names if none."""
    if name not in known:
        raise ValueError(
            f"{where} must be one of {', '.join(sorted(known))}; got {name!r}"
        )
    return known[name]


def _knobs(simulator: str) -> list[str]:
    """The knobs a simulator takes: FeedConfig's fields, or correlated_tasks' keyword
    arguments."""
    if simulator == "feed":
        return [f.name for f in fields(FeedConfig)]
    parameters = inspect.signature(correlated_tasks).parameters
    return [name for name in parameters if name not in ("n", "seed")]


def _check_data(spec: dict) -> None:
    _check_keys("[data]", spec, DATA_KEYS)
    simulator = spec.get("simulator")
    if simulator not in SIMULATORS:
        raise ValueError(
            f"[data] simulator must be one of {', '.join(SIMULATORS)}; "
            f"got {simulator!r}"
        )
    if "n" not in spec:
        raise ValueError("[data] needs n, the number of samples to draw")
    knobs = spec.get("knobs", {})
    if not isinstance(knobs, dict):
        raise ValueError("[data] knobs must be a table, e.g. knobs = { noise = 0.1 }")
    _check_keys(f"[data] knobs of the {simulator} simulator", knobs, _knobs(simulator))


def _data(spec: dict) -> tuple[Batch, Batch, Batch, list]:
    """The train, valid and test splits and the input features of a checked [data]."""
    n, seed, knobs = spec["n"], spec.get("seed", 0), dict(spec.get("knobs", {}))
    if spec["simulator"] == "feed":
        data = FeedSimulator(**knobs).simulate(n, seed=seed)
        return data.train, data.valid, data.test, data.feature_specs
    batch = correlated_tasks(n, knobs.pop("p", 0.5), seed=seed, **knobs)
    train, valid, test = batch.split((0.8, 0.1, 0.1), seed=seed)
    return train, valid, test, [Dense("x", batch.features["x"].shape[1])]


def _model(spec: dict) -> tuple[type[models.MultiTaskModel], dict]:
    """The architecture a [model] table names and its options, each option checked
    against the architecture's constructor."""
    _check_keys("[model]", spec, MODEL_KEYS)
    name = spec.get("architecture", "SharedBottom")
    architecture = _choice("[model] architecture", name, architectures())
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise ValueError("[model] options must be a table, e.g. { bottom = [64] }")
    parameters = inspect.signature(architecture).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return architecture, options
    takes = [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in ("features", "towers")
    ]
    for option in options:
        if option not in takes:
            raise ValueError(
                f"[model] option {option!r} is not taken by {architecture.__name__}; "
                f"its options: {', '.join(takes) or 'none'}"
            )
    return architecture, options


def _tower(number: int, spec: object) -> Tower:
    """The `number`th (from 1) [[towers]] table as a Tower; errors name the tower."""
    if not isinstance(spec, dict):
        raise ValueError(f"[[towers]] #{number} must be a table, got {spec!r}")
    where = "[[towers]] " + (repr(spec["name"]) if "name" in spec else f"#{number}")
    _check_keys(where, spec, [f.name for f in fields(Tower)])
    if "name" not in spec:
        raise ValueError(f"{where} needs a name")
    objectives = []
    for entry in spec.get("objectives", []):
        if not isinstance(entry, dict):
            raise ValueError(
                f'{where}: each objective must be a table like {{ name = "click" }}, '
                f"got {entry!r}"
            )
        if "name" not in entry:
            raise ValueError(f"{where}: each objective needs a name, got {entry!r}")
        label = f"{where} objective {entry['name']!r}"
        _check_keys(label, entry, [f.name for f in fields(Objective)])
        try:
            objectives.append(Objective(**entry))
        except (TypeError, ValueError) as error:  # its message names the objective
            raise ValueError(f"{where}: {error}") from error
    options = {key: spec[key] for key in ("hidden", "weight") if key in spec}
    return Tower(spec["name"], objectives, **options)


def _build(config: dict, folder: Path) -> Run:
    """The run a parsed config describes; relative file paths are taken from `folder`.
    Everything is checked before the data is drawn and the model built."""
    for name in config:
        if name not in SECTIONS:
            raise ValueError(
                f"[{name}] is not a known section; known: {', '.join(SECTIONS)}"
            )
    data_spec = _table(config, "data")
    _check_data(data_spec)
    architecture, options = _model(_table(config, "model"))
    if not isinstance(config.get("towers"), list) or not config["towers"]:
        raise ValueError("the config needs at least one [[towers]] table")
    towers = [_tower(number, spec) for number, spec in enumerate(config["towers"], 1)]
    train_spec = dict(_table(config, "train")) if "train" in config else {}
    _check_keys("[train]", train_spec, TRAIN_KEYS)
    strategy_name = train_spec.pop("weighting", "Static")
    strategy = _choice("[train] weighting", strategy_name, strategies())
    if "checkpoint" in train_spec:
        if not isinstance(train_spec["checkpoint"], str):
            raise ValueError("[train] checkpoint must be a file path (a string)")
        train_spec["checkpoint"] = folder / train_spec["checkpoint"]

    train, valid, test, features = _data(data_spec)
    if train_spec.get("seed") is not None:
        seed_everything(train_spec["seed"])  # the initial weights follow the seed too
    model = architecture(features, towers, **options)
    return Run(train, valid, test, model, {**train_spec, "weighting": strategy()})


def load_run(path: str | Path) -> Run:
    """Read the TOML run description at `path` and build its data and model.

    Raises ValueError (TypeError for a value of the wrong type) starting with `path` and
    naming the section and key at fault and what was expected: unknown sections, keys,
    knobs, options, architectures and strategies are refused, not ignored.
    """
    path = Path(path)
    try:
        return _build(tomllib.loads(path.read_text()), path.parent)
    except (TypeError, ValueError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"{path}: {error}") from error
