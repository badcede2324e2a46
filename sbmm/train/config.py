"""A training run described by a TOML file, for `python -m sbmm.train` (no notebook).

    [data]      one of three sources, each split with `seed`:
                - simulator = "feed" | "correlated_tasks"; n; seed; knobs = {...}
                  (FeedSimulator knobs, or correlated_tasks' p, d, m, c, noise)
                - file = a .csv or .parquet table, cut by fractions = [0.8, 0.1, 0.1],
                  or train, valid, test = three files; its columns: categorical,
                  dense, multi_valued (lists, or strings split on separator = "|"),
                  labels; encoder = { dim, min_count, scaling } (`TableEncoder`,
                  fitted on the training split)
                - dataset = a name of `sbmm.data.registry` (census, aliccp,
                  kuairand, aliexpress, ...); path = the folder it was downloaded
                  to (census: the repository's copy by default); fractions; seed;
                  encoder; and the data set's own options (e.g. variant, nrows)
    [model]     architecture = a class of `sbmm.models` (SharedBottom, SingleTask, MMoE,
                PLE, ...); options = {...} (its keyword arguments, e.g.
                bottom = [64, 32, 16] or n_experts = 4)
    [[towers]]  name; hidden; weight;
                objectives = [{name, kind, weight, label, mask, given, space}, ...]
    [train]     epochs; batch_size; lr; seed; weighting = a class of `sbmm.weighting`
                (Static, Uncertainty, GradNorm, DWA, PCGrad, ...); precision; compile;
                checkpoint; resume; keep_best; weight_decay;
                early_stopping = { patience, objective, metric, min_delta }

A relative checkpoint, file or data set path is taken from the config file's folder,
so a run reads and writes the same files whichever directory it starts in; the
checkpoint's folder must be writable. Architectures, strategies and data sets are
looked up in `sbmm.models`, `sbmm.weighting` and `sbmm.data.registry`: a
`MultiTaskModel` or `Weighting` subclass exported there, or a data set registered
there, can be named here with no change to this file. Every section, key, name,
option and value type is checked before any data is drawn; an error names the config
file, the section and the key, and lists the known ones (a TypeError for a value of
the wrong type). `configs/feed.toml` is a complete example.
"""

from __future__ import annotations

import inspect
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType

import pandas as pd

from .. import models, weighting
from ..data import Batch, FeedConfig, FeedSimulator, correlated_tasks
from ..data.encoding import Schema, TableEncoder, split_frame
from ..data.registry import dataset
from ..inputs import Dense
from ..objectives import Objective, Tower
from ..runtime import seed_everything
from ..validation import is_count, is_number
from .checkpoint import check_checkpoint_path
from .stopping import EarlyStopping

__all__ = ["Run", "architectures", "load_run", "strategies"]

SECTIONS = ("data", "model", "towers", "train")
SIMULATORS = ("feed", "correlated_tasks")
SIMULATOR_KEYS = ("simulator", "n", "seed", "knobs")
ENCODER_KEYS = ("dim", "min_count", "scaling", "pooling")
TABLE_KEYS = (
    "file", "train", "valid", "test", "fractions", "seed", "categorical", "dense",
    "multi_valued", "separator", "labels", "encoder",
)  # fmt: skip
DATASET_KEYS = ("dataset", "path", "fractions", "seed", "encoder")
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
    "weight_decay",
    "early_stopping",
)
# What each key's value must be, by section: a description of `VALUES`.
TYPES = {
    "data": {
        "simulator": "a string", "n": "an integer", "seed": "an integer",
        "knobs": "a table", "file": "a string", "train": "a string",
        "valid": "a string", "test": "a string", "fractions": "three numbers",
        "categorical": "a list of strings", "dense": "a list of strings",
        "multi_valued": "a list of strings", "labels": "a list of strings",
        "separator": "a string", "encoder": "a table", "dataset": "a string",
        "path": "a string",
    },
    "model": {"architecture": "a string", "options": "a table"},
    "towers": {
        "name": "a string", "hidden": "a list of integers", "weight": "a number",
        "objectives": "a list of tables",
    },
    "train": {
        "epochs": "an integer", "batch_size": "an integer", "lr": "a number",
        "seed": "an integer", "weighting": "a string", "precision": "a string",
        "compile": "true, false or a backend name", "checkpoint": "a string",
        "resume": "true or false", "keep_best": "true or false",
        "weight_decay": "a number", "early_stopping": "a table",
    },
}  # fmt: skip
VALUES = {  # a TOML value's type, by its description
    "a string": lambda v: isinstance(v, str),
    "an integer": lambda v: is_count(v, minimum=-(2**63)),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "true or false": lambda v: isinstance(v, bool),
    "true, false or a backend name": lambda v: isinstance(v, (bool, str)),
    "a table": lambda v: isinstance(v, dict),
    "a list of strings": lambda v: (
        isinstance(v, list) and all(isinstance(x, str) for x in v)
    ),
    "a list of integers": lambda v: (
        isinstance(v, list) and all(is_count(x, minimum=-(2**63)) for x in v)
    ),
    "a list of tables": lambda v: (
        isinstance(v, list) and all(isinstance(x, dict) for x in v)
    ),
    "three numbers": lambda v: (
        isinstance(v, list) and len(v) == 3 and all(is_number(x) for x in v)
    ),
}


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


def _check_types(where: str, table: dict, section: str) -> None:
    """A TypeError naming the first key of `table` whose value is not of the type
    `TYPES[section]` gives it (keys it does not list are left to their owner)."""
    for key, value in table.items():
        expected = TYPES[section].get(key)
        if expected is not None and not VALUES[expected](value):
            raise TypeError(f"{where} {key} must be {expected}, got {value!r}")


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
    sources = [key for key in ("simulator", "file", "train", "dataset") if key in spec]
    if len(sources) != 1:
        raise ValueError(
            "[data] needs exactly one source: simulator, file (or train, valid, test "
            f"files) or dataset; got {sources or 'none'}"
        )
    _check_types("[data]", spec, "data")
    if sources[0] in ("file", "train"):
        _check_keys("[data]", spec, TABLE_KEYS)
    elif sources[0] == "dataset":
        try:
            entry = dataset(spec["dataset"])
        except ValueError as error:
            raise ValueError(f"[data] dataset: {error}") from None
        _check_keys("[data]", spec, (*DATASET_KEYS, *entry.options))
        if "path" not in spec and entry.path is None:
            raise ValueError(
                f"[data] dataset {entry.name!r} needs path, the folder it was "
                "downloaded to"
            )
    else:
        _check_simulator(spec)
    if "encoder" in spec:
        _check_keys("[data] encoder", spec["encoder"], ENCODER_KEYS)


def _check_simulator(spec: dict) -> None:
    _check_keys("[data]", spec, SIMULATOR_KEYS)
    simulator = spec.get("simulator")
    if simulator not in SIMULATORS:
        raise ValueError(
            f"[data] simulator must be one of {', '.join(SIMULATORS)}; "
            f"got {simulator!r}"
        )
    if "n" not in spec:
        raise ValueError("[data] needs n, the number of samples to draw")
    knobs = spec.get("knobs", {})
    _check_keys(f"[data] knobs of the {simulator} simulator", knobs, _knobs(simulator))


def _data(spec: dict, folder: Path) -> tuple[Batch, Batch, Batch, list]:
    """The train, valid and test splits and the input features of a checked [data]."""
    if "simulator" not in spec:
        return _tables(spec, folder)
    n, seed, knobs = spec["n"], spec.get("seed", 0), dict(spec.get("knobs", {}))
    if spec["simulator"] == "feed":
        data = FeedSimulator(**knobs).simulate(n, seed=seed)
        return data.train, data.valid, data.test, data.feature_specs
    batch = correlated_tasks(n, knobs.pop("p", 0.5), seed=seed, **knobs)
    train, valid, test = batch.split((0.8, 0.1, 0.1), seed=seed)
    return train, valid, test, [Dense("x", batch.features["x"].shape[1])]


def _tables(spec: dict, folder: Path) -> tuple[Batch, Batch, Batch, list]:
    """A [data] table source: its splits encoded by a `TableEncoder` fitted on the
    training split, and that encoder's feature declarations."""
    fractions, seed = tuple(spec.get("fractions", (0.8, 0.1, 0.1))), spec.get("seed", 0)
    if "dataset" in spec:
        entry = dataset(spec["dataset"])
        path = folder / spec["path"] if "path" in spec else entry.path
        options = {k: spec[k] for k in entry.options if k in spec}
        *splits, schema = entry.load(path, fractions, seed, **options)
    else:
        schema = Schema(
            **{k: spec.get(k, ()) for k in ("categorical", "dense", "multi_valued")},
            labels=spec.get("labels", ()),
        )
        if "file" in spec:
            splits = split_frame(_read_table(folder / spec["file"]), fractions, seed)
        else:
            missing = [k for k in ("train", "valid", "test") if k not in spec]
            if missing:
                raise ValueError(f"[data] names a train file but not {missing}")
            splits = tuple(
                _read_table(folder / spec[k]) for k in ("train", "valid", "test")
            )
        separator = spec.get("separator", "|")
        splits = tuple(_split_lists(t, schema.multi_valued, separator) for t in splits)
    encoder = TableEncoder(schema, **spec.get("encoder", {})).fit(splits[0])
    train, valid, test = (encoder.transform(t) for t in splits)
    return train, valid, test, encoder.features


def _read_table(path: Path) -> pd.DataFrame:
    """A .csv or .parquet file as a DataFrame; errors name the file."""
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: a table file must end in .csv or .parquet")
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _split_lists(table: pd.DataFrame, columns, separator: str) -> pd.DataFrame:
    """`table` with each multi-valued column's strings split on `separator`; an empty
    cell (an empty string, or what a CSV reader reads as missing) is an empty list;
    lists, as Parquet holds them, stay as they are."""
    table = table.copy()
    for name in columns:
        if name in table.columns:
            table[name] = [_as_list(cell, separator) for cell in table[name]]
    return table


def _as_list(cell: object, separator: str) -> object:
    if isinstance(cell, str):
        return cell.split(separator) if cell else []
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    return cell


def _model(spec: dict) -> tuple[type[models.MultiTaskModel], dict]:
    """The architecture a [model] table names and its options, each option checked
    against the architecture's constructor."""
    _check_keys("[model]", spec, MODEL_KEYS)
    _check_types("[model]", spec, "model")
    name = spec.get("architecture", "SharedBottom")
    architecture = _choice("[model] architecture", name, architectures())
    options = spec.get("options", {})
    takes = _options(architecture)
    for option in options:
        if option not in takes:
            raise ValueError(
                f"[model] option {option!r} is not taken by {architecture.__name__}; "
                f"its options: {', '.join(takes) or 'none'}"
            )
    return architecture, options


def _options(architecture: type) -> list[str]:
    """The options an architecture's constructor takes by name: its own, and, when it
    passes `**options` on, those of the classes above it (`MultiTaskModel`'s layer
    options)."""
    takes: list[str] = []
    for cls in architecture.__mro__:
        if cls is object:
            break
        parameters = inspect.signature(cls.__init__).parameters.values()
        takes += [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in ("self", "features", "towers", *takes)
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return takes


def _tower(number: int, spec: object) -> Tower:
    """The `number`th (from 1) [[towers]] table as a Tower; errors name the tower."""
    if not isinstance(spec, dict):
        raise ValueError(f"[[towers]] #{number} must be a table, got {spec!r}")
    where = "[[towers]] " + (repr(spec["name"]) if "name" in spec else f"#{number}")
    _check_keys(where, spec, [f.name for f in fields(Tower)])
    _check_types(where, spec, "towers")
    if "name" not in spec:
        raise ValueError(f"{where} needs a name")
    objectives = []
    for entry in spec.get("objectives", []):
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
    _check_types("[train]", train_spec, "train")
    strategy_name = train_spec.pop("weighting", "Static")
    strategy = _choice("[train] weighting", strategy_name, strategies())
    if "checkpoint" in train_spec:
        path = folder / train_spec["checkpoint"]
        train_spec["checkpoint"] = check_checkpoint_path(path)

    if "early_stopping" in train_spec:
        rule = train_spec["early_stopping"]
        _check_keys(
            "[train] early_stopping", rule, [f.name for f in fields(EarlyStopping)]
        )
        train_spec["early_stopping"] = EarlyStopping(**rule)

    train, valid, test, features = _data(data_spec, folder)
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
