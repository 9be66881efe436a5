# Two commands: `make demo` runs the quickstart experiment, `make test` runs the test suite.
# Each creates .venv and installs what it needs on first use (CPU PyTorch 2.13.0 first, so the
# package's own `torch` requirement does not pull the multi-GB CUDA wheels).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,bench,tracking,serve,sweep]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tunelab run configs/quickstart.yaml --run-dir runs/quickstart

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/pytest -q --runslow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
