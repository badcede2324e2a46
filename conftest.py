"""Whatever pytest runs here (the library's tests, or `pytest --nbval book/*.ipynb`
without make), it runs with the CPU settings the chapters' stored outputs were made
with, as the Makefile exports them: PyTorch's portable CPU kernels and MKL's
reproducible mode. Set before anything imports torch; nbval's kernels inherit them.
A value already in the environment is kept.
"""

import os

CPU_SETTINGS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}

for name, value in CPU_SETTINGS.items():
    os.environ.setdefault(name, value)
