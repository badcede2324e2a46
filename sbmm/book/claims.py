"""`check`: how a chapter states and verifies a claim its prose makes.

    check(final_loss < 0.2 * floor, "the model goes well below the no-signal floor")

raises an AssertionError quoting the claim when it is false (re-executing the chapter then fails), and
prints "✓ <claim>" when it holds, so the rendered page lists what was verified.
"""

from __future__ import annotations

__all__ = ["check"]


def check(condition: bool, claim: str) -> None:
    """Raise AssertionError("claim does not hold: <claim>") unless `condition`; else print "✓ <claim>"."""
    if not isinstance(claim, str) or not claim:
        raise TypeError("check needs the claim as a non-empty string")
    if not bool(condition):
        raise AssertionError(f"claim does not hold: {claim}")
    print(f"✓ {claim}")
