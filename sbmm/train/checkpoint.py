"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model's and the optimiser's state, the weighting strategy's
state, the `History` so far (as a plain dict), the towers' declarations, the number of
finished epochs, the best epoch's weights (with `fit(keep_best=True)`) and the random
generators' states (so the next epoch shuffles as the uninterrupted run would have):
tensors, dicts, lists, numbers and strings only. It is written atomically (a temporary
file, then a rename; a failed write leaves neither behind), and read back with
`torch.load(weights_only=True)`, so a file never runs code: one that holds any other
object is refused.

Reading one back checks it before anything changes: a file that is not a checkpoint
(empty, truncated, not written by `torch.save`, holding other objects), one that lacks
an entry, one written by another model, strategy or optimiser, or for towers declared
otherwise (an objective's kind, label, mask... changed under the same name), or one
that finished more epochs than the run asks for raises a ValueError naming the file
and what does not match, and `restore_run` leaves the model, optimiser, weighting,
History and random generators as they were.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "Checkpoint",
    "check_checkpoint_path",
    "load_checkpoint",
    "restore_run",
    "save_checkpoint",
]

# The entries every checkpoint holds, and the type of each ("best_model" may be None).
ENTRIES = {
    "model": Mapping,
    "optimizer": Mapping,
    "weighting": Mapping,
    "history": Mapping,
    "towers": list,
    "epoch": int,
    "rng": Mapping,
}


class Checkpoint(dict):
    """A checkpoint's state (the dict `save_checkpoint` writes) and `path`, the file
    it was read from (None for a state built in memory), so that errors can name it."""

    def __init__(self, state: Mapping, path: Path | None = None):
        super().__init__(state)
        self.path = path


def _run_state(model: nn.Module, optimizer, weighting, history) -> dict:
    """The run's current state: a checkpoint's entries but towers, epoch and
    best_model."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "weighting": weighting.state_dict(),
        "history": asdict(history),
        "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
    }


def _plain(value: object) -> object:
    """A declaration's value as plain data a checkpoint can hold and compare: numbers,
    strings and None as they are, sequences as lists, dataclasses as dicts of their
    fields, functions by their qualified name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return f"function {getattr(value, '__module__', '?')}.{name}"
    return repr(value)


def declarations(model: nn.Module) -> list[dict]:
    """The towers `model` was built from, one dict per objective: its tower's name and
    weight, and every field of its `Objective` declaration, as plain data."""
    return [
        {
            "tower": tower.name,
            "tower_weight": _plain(tower.weight),
            **{f.name: _plain(getattr(objective, f.name)) for f in fields(objective)},
        }
        for tower in getattr(model, "tower_specs", ())
        for objective in tower.objectives
    ]


def check_checkpoint_path(path: str | os.PathLike) -> Path:
    """`path` as a Path once a checkpoint can be written there: it is not a folder, and
    its folder exists and is writable, or can be made (its nearest existing ancestor
    is a writable folder). Raises ValueError naming the path and the folder at fault,
    so a run can check before its first epoch rather than fail after it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path, got {path!r}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a folder; give a file path in it")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"checkpoint {path} exists and is not writable")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(
            f"checkpoint {path} cannot be written: {folder} is a file, not a folder"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"checkpoint {path} cannot be written: the folder {folder} is not writable"
        )
    return path


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model,
    optimizer,
    weighting,
    history,
    epoch: int,
    best_model: dict | None = None,
) -> None:
    """Write the run's state after `epoch` finished epochs to `path`, making its folder
    if needed (`best_model`: the best epoch's state_dict, when the run keeps it).
    Raises ValueError naming `path` when it cannot be written there
    (`check_checkpoint_path`); a write that fails all the same leaves no temporary
    file behind, and the previous checkpoint at `path`, if any, as it was."""
    path = check_checkpoint_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        **_run_state(model, optimizer, weighting, history),
        "towers": declarations(model),
        "epoch": epoch,
        "best_model": best_model,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _describe(path: Path | None) -> str:
    return f"checkpoint {path}" if path is not None else "the checkpoint"


def _checked(state: object, path: Path | None) -> Checkpoint:
    """`state` as a `Checkpoint` read from `path`, once it is known to hold every entry
    with its type; a ValueError naming `path` and the entry otherwise."""
    where = _describe(path)
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{where} holds a {type(state).__name__}, not a checkpoint; expected a "
            f"dict with {list(ENTRIES)} as written by save_checkpoint"
        )
    missing = [key for key in ENTRIES if key not in state]
    if missing:
        raise ValueError(
            f"{where} lacks the entries {missing}; a checkpoint written by "
            f"save_checkpoint holds {list(ENTRIES)}"
        )
    for key, kind in ENTRIES.items():
        if not isinstance(state[key], kind):
            raise ValueError(
                f"{where}: entry {key!r} is a {type(state[key]).__name__}, "
                f"expected a {kind.__name__}"
            )
    return Checkpoint(state, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: torch.device | str = "cpu"
) -> Checkpoint:
    """The state saved by `save_checkpoint` at `path`, its tensors on `map_location`: a
    `Checkpoint` (a dict with model, optimizer, weighting, history, epoch, best_model,
    rng, and the attribute `path`).

    The file is read with `torch.load(weights_only=True)`: nothing in it is called.
    Raises ValueError naming the file when there is none, when it cannot be read
    (empty, truncated, not written by torch.save, or holding objects other than
    tensors, dicts, lists, numbers and strings), or when it lacks an entry.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # what weights_only refuses, or junk
        found = re.search(r"GLOBAL (\S+)", str(error))
        if found is None:
            raise _unreadable(path, error) from error
        raise ValueError(
            f"checkpoint {path} could not be read: it holds {found[1]}, and only "
            "tensors, dicts, lists, numbers and strings are loaded (loading anything "
            "else could run code from the file); expected a file written by "
            "save_checkpoint"
        ) from None
    except Exception as error:  # unpickling arbitrary bytes fails in many ways
        raise _unreadable(path, error) from error
    return _checked(state, path)


def _unreadable(path: Path, error: Exception) -> ValueError:
    return ValueError(
        f"checkpoint {path} could not be read ({type(error).__name__}: {error}); "
        "expected a file written by save_checkpoint"
    )


def _listing(items: list[str], limit: int = 6) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _check_model(saved: Mapping, model: nn.Module, where: str) -> None:
    """Refuse a model state whose parameter or buffer names or shapes differ from
    `model`'s, naming the missing, unexpected and reshaped ones."""
    own = model.state_dict()
    missing = [key for key in own if key not in saved]
    unexpected = [key for key in saved if key not in own]
    reshaped = [
        f"{key} {tuple(saved[key].shape)} in the file, "
        f"{tuple(value.shape)} in the model"
        for key, value in own.items()
        if isinstance(value, Tensor)
        and isinstance(saved.get(key), Tensor)
        and saved[key].shape != value.shape
    ]
    problems = [
        f"{label}: {_listing(keys)}"
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("other shapes", reshaped),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            f"{where} does not fit this {type(model).__name__} (another architecture, "
            f"widths or towers?): {'; '.join(problems)}"
        )


def _check_weighting(saved: Mapping, weighting, where: str) -> None:
    """Refuse a strategy state with other entries, tensor shapes or objective names
    than `weighting`'s."""
    name = type(weighting).__name__
    if set(saved) != set(weighting.STATE):
        raise ValueError(
            f"{where} was written with another weighting strategy: its state has "
            f"{sorted(saved)}; {name} expected {sorted(weighting.STATE)}"
        )
    for key in weighting.STATE:
        own, value = getattr(weighting, key, None), saved[key]
        if isinstance(own, Tensor) and isinstance(value, Tensor):
            if own.shape != value.shape:
                raise ValueError(
                    f"{where}: {name} state {key!r} has shape {tuple(value.shape)} in "
                    f"the file, {tuple(own.shape)} in this run"
                )
        if isinstance(own, Mapping) and isinstance(value, Mapping):
            if set(own) != set(value):
                raise ValueError(
                    f"{where}: {name} state {key!r} is for {sorted(value)}, this run's "
                    f"for {sorted(own)}"
                )


def _check_optimizer(
    saved: Mapping, optimizer: torch.optim.Optimizer, where: str
) -> None:
    """Refuse an optimiser state whose parameter groups differ in number or size."""
    groups = saved.get("param_groups")
    if "state" not in saved or not isinstance(groups, list):
        raise ValueError(
            f"{where}: its 'optimizer' entry is not an optimiser's state_dict"
        )
    sizes = [len(group.get("params", ())) for group in groups]
    own = [len(group["params"]) for group in optimizer.param_groups]
    if sizes != own:
        raise ValueError(
            f"{where}: the optimiser state has parameter groups of sizes {sizes}, this "
            f"run's optimiser {own} (another optimiser, or a strategy with other "
            "parameters?)"
        )


def _check_history(saved: Mapping, history, where: str) -> None:
    """Refuse a History with unknown fields, or with losses and weights under other
    names than the run's (other objectives, or validation data in one run only)."""
    known = [f.name for f in fields(history)]
    unknown = sorted(set(saved) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: its history has unknown fields {unknown}; known: {known}"
        )
    for key in ("train_loss", "valid_loss", "weights"):
        value, own = saved.get(key, {}), getattr(history, key)
        if not isinstance(value, Mapping) or set(value) != set(own):
            names = sorted(value) if isinstance(value, Mapping) else value
            raise ValueError(
                f"{where}: its history's {key} is for {names}, this run's for "
                f"{sorted(own)} (other objectives, or validation data in one run only?)"
            )


def _check_towers(saved: list, model: nn.Module, where: str) -> None:
    """Refuse declarations other than `model`'s: other objectives, or an objective
    whose kind, label, mask, given, space, dim, weight... or tower changed under the
    same name (its loss would change in the middle of the run)."""
    own = {d["name"]: d for d in declarations(model)}
    if not all(isinstance(d, Mapping) and "name" in d for d in saved):
        raise ValueError(f"{where}: its 'towers' entry is not a list of declarations")
    theirs = {d["name"]: d for d in saved}
    if set(theirs) != set(own):
        raise ValueError(
            f"{where} was written for the objectives {sorted(theirs)}, this run "
            f"declares {sorted(own)}"
        )
    changed = [
        f"objective {name!r}: {key} {theirs[name][key]!r} in the file, {value!r} in "
        "this run"
        for name, declared in own.items()
        for key, value in declared.items()
        if key in theirs[name] and theirs[name][key] != value
    ]
    if changed:
        raise ValueError(
            f"{where} was written for towers declared otherwise ({_listing(changed)}); "
            "resuming would change the loss in the middle of the run: declare them as "
            "the checkpoint's, or start a new run"
        )


def _check_epochs(finished: int, epochs: int | None, where: str) -> None:
    """Refuse resuming a checkpoint that finished more epochs than the run asks for."""
    if epochs is not None and finished > epochs:
        raise ValueError(
            f"{where} has finished {finished} epochs, more than the {epochs} asked "
            f"for; ask for at least {finished} epochs to resume it, or start a new run"
        )


def _load(state: Mapping, model: nn.Module, optimizer, weighting, history) -> None:
    model.load_state_dict(state["model"])
    weighting.load_state_dict(state["weighting"])
    optimizer.load_state_dict(state["optimizer"])
    for key, value in state["history"].items():
        setattr(history, key, value)
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def restore_run(
    checkpoint: str | os.PathLike | Mapping,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    weighting,
    history,
    map_location: torch.device | str = "cpu",
    *,
    epochs: int | None = None,
) -> tuple[int, dict[str, Tensor] | None]:
    """Load a checkpoint into a run's objects, all or nothing.

    checkpoint: a file written by `save_checkpoint` (read onto `map_location`), or its
                state (`load_checkpoint`'s result, whose errors then name its file, or
                a plain dict).
    model, optimizer, weighting, history:
                the run's, as `fit` prepares them: the strategy bound to the model, the
                optimiser over the model's and then the strategy's parameters, the
                History with an empty list under each loss and weight name.
    epochs:     the number of epochs the run asks for, if known: a checkpoint that
                has finished more is refused (it would return the old, longer run).

    Returns the number of epochs the checkpoint had finished and the best epoch's
    weights (None unless the run keeps them). Every entry is checked against the run
    before anything is loaded: a checkpoint that does not fit (another model's
    parameter names or shapes, another strategy, other objectives or objectives
    declared otherwise, other optimiser groups, more finished epochs than `epochs`)
    raises a ValueError naming the file and what differs; a load that fails
    all the same is undone, and raises a ValueError too. Either way the model,
    optimiser, weighting, History and random generators are left as they were.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        state = load_checkpoint(checkpoint, map_location)
    else:
        state = _checked(checkpoint, getattr(checkpoint, "path", None))
    where = _describe(state.path)
    _check_epochs(state["epoch"], epochs, where)
    _check_model(state["model"], model, where)
    _check_towers(state["towers"], model, where)
    _check_weighting(state["weighting"], weighting, where)
    _check_optimizer(state["optimizer"], optimizer, where)
    _check_history(state["history"], history, where)
    before = copy.deepcopy(_run_state(model, optimizer, weighting, history))
    try:
        _load(state, model, optimizer, weighting, history)
    except Exception as error:
        _load(before, model, optimizer, weighting, history)
        raise ValueError(
            f"{where} could not be restored ({type(error).__name__}: {error}); "
            "the run was left as it was"
        ) from error
    return state["epoch"], state.get("best_model")


def copy_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of `model`'s state dict: the weights to fall back on or keep."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
