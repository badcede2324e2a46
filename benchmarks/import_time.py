"""What `import sbmm` costs beyond PyTorch's own import: each timed in fresh
interpreters, taken in turns, `--repeats` times each after one untimed warm-up of each
(to fill the disk cache). A timing is the import's own seconds inside the interpreter,
its start-up excluded. Printed: the median seconds of each, their ratio (the goal is
at most 1.3), and the heavy packages `import sbmm` loaded, which it should not (they
wait until a table is shown, a figure drawn or a real table read).

    python benchmarks/import_time.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.3  # `import sbmm` over `import torch`, at most
HEAVY = ("matplotlib", "pandas", "tabulate", "IPython", "sklearn", "scipy", "sbmm.book")
TIMED = """
import sys, time
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
print(*sorted(m for m in {heavy} if m in sys.modules))
"""


def import_once(module: str) -> tuple[float, list[str]]:
    """Seconds `import module` takes in a fresh interpreter run in the repository, and
    which of HEAVY it left in sys.modules."""
    code = TIMED.format(module=module, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, loaded = result.stdout.splitlines()
    return float(seconds), loaded.split()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    times = {"torch": [], "sbmm": []}
    for module in times:
        import_once(module)  # warm-up: the disk cache
    for _ in range(args.repeats):
        for module, runs in times.items():
            runs.append(import_once(module)[0])
    loaded = import_once("sbmm")[1]
    torch_s, sbmm_s = (statistics.median(runs) for runs in times.values())
    ratio = sbmm_s / torch_s
    cpu = platform.processor() or platform.machine()
    print(
        f"Python {platform.python_version()}, torch {version('torch')} on {cpu}; "
        f"median of {args.repeats}"
    )
    print(f"import torch  {torch_s:6.2f} s")
    print(f"import sbmm   {sbmm_s:6.2f} s  ({ratio:.2f}x torch; goal <= {GOAL}x)")
    print(f"heavy packages `import sbmm` loaded: {', '.join(loaded) or 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": f"{cpu} CPU",
                    "python": platform.python_version(),
                    "torch": version("torch"),
                    "repeats": args.repeats,
                    "import torch s": times["torch"],
                    "import sbmm s": times["sbmm"],
                    "median torch s": torch_s,
                    "median sbmm s": sbmm_s,
                    "ratio": ratio,
                    "goal": GOAL,
                    "heavy loaded": loaded,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
