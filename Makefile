# The two set-up commands of the README: `make run` and `make test`. Both install into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

# Until the Jupyter extension lands, `make run` runs the seed flow on the embedded SQLite store.
run: $(STAMP)
	$(BIN)/kestra-nb run examples/myflow.yml

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@status=0; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache
