# Course commands. Quick start on a fresh machine (Python 3.11, make, Node.js/npm):
#   make book    # build the HTML book into _build/html
#   make test    # run the whole test suite (unit tests, notebooks, browser checks)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The torch pin, read from requirements.txt ("torch==X.Y.Z").
TORCH  := $(shell grep -m1 -E '^torch==' requirements.txt)
# Index of CPU-only torch builds, used when pip has no local torch wheel
# (PyPI's torch would pull several GB of CUDA packages).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# Console scripts the tools shell out to (nbgrader, jupyter) come from the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: book test benchmark clean venv vendor browser notebooks

# Build the book (HTML) with warnings as errors.
book: venv vendor
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "Book built: open file://$(CURDIR)/_build/html/index.html"

# Run every test: unit tests, environment checks and the notebooks (nbval, via addopts).
test: venv browser vendor
	$(BIN)/python -m pytest

# Report each notebook's run time and peak memory against the course budget.
benchmark: venv vendor
	$(BIN)/python scripts/benchmark_notebooks.py

# Re-execute every chapter in place, storing its outputs and widget state (what nbval compares
# and the book renders): after a change to dlcourse, or where the stored numbers differ in their
# last digits because this CPU rounds differently.
notebooks: venv
	for nb in book/regularization/*.ipynb book/optimization/*.ipynb; do \
	  $(BIN)/jupyter execute --inplace $$nb || exit 1; done

# Remove the built book (the virtualenv stays).
clean:
	rm -rf _build

# Create the virtualenv and install the pinned environment; reruns only when the pins change.
# torch goes first, alone, as the CPU build: a local wheel (pip's find-links) if there is one,
# else from TORCH_INDEX; then the pins (torch's own dependencies come with them), then dlcourse.
venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --no-deps --no-index "$(TORCH)" 2>/dev/null \
	  || $(BIN)/python -m pip install --no-deps --index-url $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

# Copy MathJax, require.js and the widget manager into _vendor/ so pages work offline.
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
