# Course commands. Quick start on a fresh machine (Python 3.11, make, Node.js/npm):
#   make book    # build the HTML book into _build/html
#   make test    # run the whole test suite (unit tests, notebooks, browser checks)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Index of CPU-only torch builds, used when pip has no local torch wheel.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# Console scripts the tools shell out to (nbgrader, jupyter) come from the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: book test test-robust test-isa benchmark benchmark-optim clean venv vendor browser notebooks lint lock

# Numerics (scripts/numerics.py): canonical = the same bits on every x86-64 CPU, used to
# record and to compare stored outputs; native = each library's fastest kernels, as in
# JupyterLab, with seed_everything's thread counts swapped.
CANONICAL := $(BIN)/python scripts/numerics.py canonical
NATIVE    := $(BIN)/python scripts/numerics.py native

# Build the book (HTML) with warnings as errors.
book: venv vendor
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "Book built: open file://$(CURDIR)/_build/html/index.html"

# Run every test: unit tests, environment checks and the notebooks (nbval, via addopts),
# under canonical numerics (the root conftest.py sets them, also for a plain `pytest`).
test: venv browser vendor
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The perturbed run: every chapter executed with native numerics and other thread counts.
# Outputs are not compared (nbval's lax mode); every cell must run and every assert hold.
test-robust: venv
	DLCOURSE_NUMERICS=native $(BIN)/python -m pytest -n 2 --dist loadfile -o addopts="-ra" -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=300 book

# Proof that canonical numerics do not depend on the instruction set: the notebooks'
# stored outputs compared with MKL capped at SSE4.2 and oneDNN at SSE4.1 (torch's kernels
# and numpy's loops are already at their portable baseline in canonical mode, and
# seed_everything keeps convolutions off oneDNN there).
test-isa: venv
	MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 $(BIN)/python -m pytest book

# Report each notebook's run time and peak memory against the course budget.
benchmark: venv vendor
	$(BIN)/python scripts/benchmark_notebooks.py

# Speed of each dlcourse optimizer's step() against its torch.optim twin (single-tensor
# path and torch's default) on a 1 M-parameter MLP: a table of ratios; fails above 2x.
benchmark-optim: venv
	$(BIN)/python scripts/benchmark_optim.py

# Re-execute every chapter in place (or only NB=path/to/chapter.ipynb), storing its outputs
# and widget state (what nbval compares and the book renders), under canonical numerics.
notebooks: venv
	for nb in $(or $(NB),book/regularization/*.ipynb book/optimization/*.ipynb); do \
	  $(CANONICAL) $(BIN)/jupyter execute --inplace --timeout=300 $$nb || exit 1; done

# ruff: formatting and lint of dlcourse/, tests/, scripts/ and the notebooks (CI fails on any).
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Remove the built book (the virtualenv stays).
clean:
	rm -rf _build

# Create the virtualenv and install the locked environment (requirements.lock: every package,
# transitively, with its hashes); reruns only when the lock changes. torch's CPU build comes
# from a local wheel (pip's find-links) if there is one, else from TORCH_INDEX (PyPI's torch
# would pull several GB of CUDA packages). Then dlcourse itself, editable.
venv: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes --no-deps -r requirements.lock \
	  || $(BIN)/python -m pip install --require-hashes --no-deps -r requirements.lock \
	     --extra-index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	touch $@

# Regenerate requirements.lock and environment.yml from requirements.txt (uv, hashes).
lock: venv
	$(BIN)/python scripts/lock.py

# Copy MathJax, require.js and the widget manager into _vendor/book/ so pages work offline,
# and axe-core (the browser test's accessibility check) into _vendor/tools/.
vendor: venv
	$(BIN)/python scripts/vendor_assets.py

# Install Debian's chromium for the browser tests when it is missing.
browser:
	bash scripts/install_browser.sh

# Graded exercises (nbgrader): generate the student versions of exercises/source/<ps>/ into
# exercises/release/<ps>/ and copy them to book/exercises/ (see book/exercises/instructors.md).
.PHONY: exercises
exercises: venv
	cd exercises && for dir in source/*/; do ps=$$(basename $$dir); \
	  $(CURDIR)/$(BIN)/nbgrader generate_assignment --force $$ps || exit 1; \
	  cp release/$$ps/$$ps.ipynb ../book/exercises/$$ps.ipynb; done
