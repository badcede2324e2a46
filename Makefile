# make book       install what is needed, build the HTML book into _build/html (a reader's
#                 build: warnings are printed, not fatal; `make test` builds with -W)
# make test       install what is needed, run the library tests, nbval over every chapter, and a -W book build
# make notebooks  re-execute every chapter in place, storing the outputs of the current profile,
#                 and write the numbers they glue into their prose
# make bench      the throughput benchmarks
# make browser-check  open every page of the built book in headless Chromium (tests/browser_check.py)
#
# Everything runs in a virtual environment, .venv, made and filled from requirements.txt on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
NOTEBOOKS := $(wildcard book/*.ipynb)
# Progress bars are for people: stored outputs and nbval runs are made without them.
export TQDM_DISABLE := 1
# The same digits on any x86 CPU: PyTorch's portable kernels instead of the AVX2 / AVX-512 ones
# this CPU offers, and MKL's conditional numerical reproducibility. The stored outputs are made
# this way and nbval re-executes them this way (measured: no slower for the book's small models).
# The same two settings reach every other way in: the kernel the install step writes (below)
# for JupyterLab and `jupyter execute`, and the root conftest.py for a bare `pytest`.
export ATEN_CPU_CAPABILITY := default
export MKL_CBWR := COMPATIBLE
# The book's own runs hold its prose to its numbers: a claim that does not hold fails the run
# (a reader's session only warns; see sbmm/book/claims.py).
export SBMM_STRICT_CLAIMS := 1

.PHONY: install book test unit nbval notebooks bench browser-check clean

install: $(STAMP) $(KERNEL)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	# Build matplotlib's font cache now, so that its first-use notice never lands in a notebook's stderr.
	MPLBACKEND=agg $(PY) -c "import matplotlib.pyplot"
	touch $@

# The chapters' kernel, in .venv: named as the chapters name it ("Python 3"), so that
# JupyterLab opens them unmodified, and started with the CPU settings above, so that a
# chapter run in JupyterLab or by `jupyter execute` gives the stored digits.
$(KERNEL): $(STAMP) Makefile
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" \
	  --env ATEN_CPU_CAPABILITY $(ATEN_CPU_CAPABILITY) --env MKL_CBWR $(MKL_CBWR) > /dev/null
	touch $@

# A reader's build: Sphinx's warnings are printed and the book is built all the same, so
# that a new warning from a later release of an unpinned Sphinx package does not stop it.
# `make test` builds it with -W (tests/test_book.py), so CI fails on any warning.
BOOK_FLAGS ?= -n --keep-going
# Test processes at a time: one per core of a 2-core machine.
NBVAL_WORKERS ?= 2

book: $(STAMP) $(KERNEL)
	$(VENV)/bin/jupyter-book build $(BOOK_FLAGS) .

# The library tests and the book's checks, two files at a time (one per core), then the
# chapters.
test: $(STAMP) $(KERNEL)
	$(PY) -m pytest -n $(NBVAL_WORKERS) --dist loadfile tests
	$(MAKE) nbval

unit: $(STAMP)
	$(PY) -m pytest tests -m "not book"

# Two chapters at a time, one per core (pytest-xdist; --dist loadfile keeps each chapter's
# cells in order in one kernel). Each kernel runs one CPU thread (the profile's), so the
# numbers are those of a chapter run alone.

nbval: $(STAMP) $(KERNEL)
	$(PY) -m pytest -n $(NBVAL_WORKERS) --dist loadfile --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/sanitize.cfg $(NOTEBOOKS)

notebooks: $(STAMP) $(KERNEL)
	cd book && for nb in $(notdir $(NOTEBOOKS)); do \
	  ../$(VENV)/bin/jupyter execute --inplace --timeout=1800 $$nb || exit 1; \
	done
	# The prose quotes the numbers the run glued (sbmm/book/prose.py): write them in.
	$(PY) -m sbmm.book.prose $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

# Debian's chromium, installed with apt-get (as root, or through sudo) where it is missing.
CHROMIUM := /usr/bin/chromium
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# `make book` first: Sphinx rebuilds only what changed since the last build.
browser-check: book $(CHROMIUM)
	$(PY) tests/browser_check.py

clean:
	rm -rf _build
