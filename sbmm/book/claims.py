"""`check`: how a chapter states and verifies a claim its prose makes.

    check(final_loss < 0.2 * floor, "the model goes well below the no-signal floor")

and the two claims every comparison rests on (the book's protocol):

    lr = pick_lr("shared", sweep)         # the sweep's best, inside its grid
    check_converged({"shared": runs, ...}) # every compared replica converged

prints "✓ <claim>" when it holds, so the rendered page lists what was verified. When it
does not hold, what happens depends on who runs the chapter:

- the book's own runs (`make notebooks`, `make test`, which set SBMM_STRICT_CLAIMS=1)
  raise an AssertionError quoting the claim, so a chapter whose prose is no longer true
  fails;
- a reader's session gets a `ClaimWarning` and a printed "✗ <claim>", and the chapter
  goes on: an experimenter who widens a layer sees which sentences their change made
  false, and their run is not halted.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Iterable, Mapping

import numpy as np

from ..compare import WIDTH  # the book's column, in characters
from ..train import LrSweep, Replicas

__all__ = ["check", "check_converged", "pick_lr", "ClaimWarning", "STRICT_ENV"]

STRICT_ENV = "SBMM_STRICT_CLAIMS"  # "1": a claim that does not hold raises


class ClaimWarning(UserWarning):
    """A chapter's claim does not hold in this run."""


def check(condition: bool, claim: str) -> None:
    """Print "✓ <claim>" if `condition`; otherwise raise
    AssertionError("claim does not hold: <claim>") when SBMM_STRICT_CLAIMS is "1", or
    print "✗ <claim>" and warn. The printed claim is wrapped to 88 columns."""
    if not isinstance(claim, str) or not claim:
        raise TypeError("check needs the claim as a non-empty string")
    if bool(condition):
        print(_wrapped(f"✓ {claim}"))
        return
    if os.environ.get(STRICT_ENV, "") == "1":
        raise AssertionError(f"claim does not hold: {claim}")
    print(_wrapped(f"✗ {claim}"))
    warnings.warn(
        f"claim does not hold in this run: {claim}", ClaimWarning, stacklevel=2
    )


def check_converged(
    runs: Mapping[str, Replicas], objectives: Iterable[str] | None = None
) -> None:
    """Claim that every replica of every compared model converged
    (`Replicas.converged`: early stopping fired, or each objective's best validation
    epoch lies at least `patience` epochs before the last): on `objectives`, or on
    every objective and the total. `runs`: {model name: its Replicas}. When it does
    not hold, the claim names the models, seeds and objectives that had not."""
    wanted = None if objectives is None else set(objectives)
    missing, n = [], 0
    for name, run in runs.items():
        for seed, verdicts in run.converged().items():
            n += 1
            late = [o for o, ok in verdicts.items() if not ok]
            late = [o for o in late if wanted is None or o in wanted]
            if late:
                missing.append(f"{name} (seed {seed}: {', '.join(late)})")
    claim = f"every compared model converged ({n} runs of {len(runs)} models)"
    if missing:
        shown = "; ".join(missing[:4]) + ("; ..." if len(missing) > 4 else "")
        claim += f": {len(missing)} had not, {shown}"
    check(not missing, claim)


def pick_lr(name: str, sweep: LrSweep) -> float:
    """The learning rate of model `name`'s best mean validation score in `sweep`,
    with the claim that it lies inside the grid (`LrSweep.best`). Where it lies on an
    edge the book's run fails, and a reader's session warns and goes on with it."""
    means = sweep.means if sweep.higher_is_better else -sweep.means
    if np.isnan(means).all():
        raise ValueError(f"{name}: training diverged at every lr of {list(sweep.lrs)}")
    lr = sweep.lrs[int(np.nanargmax(means))]
    check(
        lr not in (sweep.lrs[0], sweep.lrs[-1]),
        f"{name}: the learning rate chosen, {lr:g}, lies inside its grid "
        f"{{{', '.join(f'{v:g}' for v in sweep.lrs)}}}",
    )
    return lr


def _wrapped(line: str) -> str:
    """`line` wrapped to WIDTH columns, its continuation lines indented under the
    claim's first word."""
    return textwrap.fill(line, WIDTH, subsequent_indent="  ", break_long_words=False)
