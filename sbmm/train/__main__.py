"""Train a model from a TOML config, without a notebook.

    python -m sbmm.train configs/feed.toml
    torchrun --nproc_per_node=2 -m sbmm.train configs/feed.toml   # data-parallel

Rank 0 prints one line per epoch, where the checkpoint went (a relative [train]
checkpoint is taken from the config file's folder), and at the end the test metrics
per objective as JSON. A config that does not describe a run exits with status 2 and
a message naming the file, the section and the key, before any training.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from . import evaluate, fit
from .config import load_run


def main(argv: list[str] | None = None) -> None:
    """Run the config named in `argv` (the command line by default)."""
    parser = argparse.ArgumentParser(
        prog="python -m sbmm.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "config", help="a TOML run description (see sbmm/train/config.py)"
    )
    args = parser.parse_args(argv)
    try:
        run = load_run(args.config)
    except (OSError, TypeError, ValueError) as error:
        parser.error(str(error))
    history = fit(run.model, run.train, run.valid, progress=False, **run.fit_options)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    for epoch in range(history.epochs):
        losses = " ".join(
            f"{name} {values[epoch]:.4f}" for name, values in history.valid_loss.items()
        )
        print(f"epoch {epoch + 1}: validation loss {losses}")
    if run.fit_options.get("checkpoint") is not None:
        print(f"checkpoint: {run.fit_options['checkpoint']}")
    with torch.no_grad():
        metrics = evaluate(run.model, run.test)
    print(json.dumps({"test": metrics}, indent=2))


if __name__ == "__main__":
    main()
