"""The code's style: 88 columns (code, docstrings and comments alike) and ruff's format.

Both checks run the ruff pinned in requirements.txt on the library, the tests, the
benchmarks and the chapters' code cells (ruff reads notebooks; their outputs are left
alone). To fix a failure: `ruff format sbmm tests benchmarks book`, then rewrap by hand
the docstrings, comments and strings `ruff check --select E501` lists on the same paths
(ruff format does not rewrap them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("sbmm", "tests", "benchmarks", "book")
LINE_LENGTH = "88"


def ruff(*args: str) -> subprocess.CompletedProcess:
    """Run ruff (`python -m ruff`, the test environment's) in the repository."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_no_line_is_longer_than_88_columns():
    result = ruff(
        "check",
        "--select",
        "E501",
        "--line-length",
        LINE_LENGTH,
        "--output-format",
        "concise",
    )
    findings = [line for line in result.stdout.splitlines() if ": E501 " in line]
    assert not findings and result.returncode == 0, (
        f"{len(findings)} lines over {LINE_LENGTH} columns:\n"
        + "\n".join(findings)
        + f"\n{result.stderr}"
    )


def test_no_notebook_code_line_scrolls_sideways():
    """ruff's E501 spares lines that end in a pragma or hold one long token; on the
    page every character counts, so the chapters' code lines are measured as they
    are."""
    long = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for number, cell in enumerate(cells):
            for line in "".join(cell["source"]).splitlines():
                if cell["cell_type"] == "code" and len(line) > int(LINE_LENGTH):
                    long.append(f"{path.name} cell {number}: {line}")
    assert not long, "\n".join(long)


def test_code_is_formatted_by_ruff():
    result = ruff(
        "format", "--check", "--line-length", LINE_LENGTH, "--output-format", "concise"
    )
    assert result.returncode == 0, (
        "ruff format would change these files (`ruff format --diff` shows how):\n"
        f"{result.stdout}{result.stderr}"
    )
