# Two entry points for a fresh machine: `make run` (the default study) and `make test`; `make lint` and
# `make typecheck` run ruff and mypy; `make wheel` builds the wheel and tries it in a fresh virtualenv (.ci/wheel).
# torch is installed first, pinned, so that pip takes the CPU build instead of pulling CUDA wheels.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: setup run test lint typecheck wheel

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(BIN)/mixopt study run

# One worker per core, a test file per worker (module fixtures are built once); the slowest tests and the
# reasons for any skip are listed.
test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadfile --durations=25 -rs

lint: setup
	$(BIN)/ruff check mixopt runners surrogates benchmarks tests

# Build the sdist and wheel (no warnings allowed), install the wheel into a fresh virtualenv with torch==2.13.0
# first, and run and export the synthetic study from a folder outside the checkout.
wheel: setup
	PYTHON=$(PYTHON) BUILD_PYTHON=$(CURDIR)/$(BIN)/python bash .ci/wheel

# mypy cannot follow setuptools' package-dir mapping, so it checks a tree of links laid out as installed:
# build/typecheck/mixopt holds mixopt/'s files with runners/ and surrogates/ as mixopt/runners, mixopt/surrogates.
TYPECHECK = build/typecheck
typecheck: setup
	rm -rf $(TYPECHECK)/mixopt && mkdir -p $(TYPECHECK)/mixopt
	for entry in mixopt/*; do ln -s "$(CURDIR)/$$entry" $(TYPECHECK)/mixopt/; done
	ln -s "$(CURDIR)/runners" $(TYPECHECK)/mixopt/runners
	ln -s "$(CURDIR)/surrogates" $(TYPECHECK)/mixopt/surrogates
	cd $(TYPECHECK) && "$(CURDIR)/$(BIN)/mypy" --config-file "$(CURDIR)/pyproject.toml" \
		--python-executable "$(CURDIR)/$(BIN)/python" -p mixopt
