"""`check`: how a chapter states and verifies a claim its prose makes.

    check(final_loss < 0.2 * floor, "the model goes well below the no-signal floor")

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

from ..compare import WIDTH  # the book's column, in characters

__all__ = ["check", "ClaimWarning", "STRICT_ENV"]

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


def _wrapped(line: str) -> str:
    """`line` wrapped to WIDTH columns, its continuation lines indented under the
    claim's first word."""
    return textwrap.fill(line, WIDTH, subsequent_indent="  ", break_long_words=False)
