# Two entry points for a fresh machine: `make run` (the default study) and `make test`.
# torch is installed first, pinned, so that pip takes the CPU build instead of pulling CUDA wheels.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: setup run test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(BIN)/mixopt study run

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider
