# The two set-up commands of the README: `make run` and `make test`. Both install into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: run test fuzz bench install chromium clean notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the JupyterLab extension is built by the install (hatch-jupyter-builder: npm install, then its build)
EXTENSION := js/package.json js/package-lock.json js/tsconfig.json $(wildcard js/src/*.ts js/style/*) \
             $(wildcard kestra_nb/ui/static/*)

$(STAMP): pyproject.toml $(EXTENSION) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

# The browser test drives Debian's chromium (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# JupyterLab on loopback with the kestra_nb server extension, on the embedded SQLite store.
run: $(STAMP)
	@TOKEN=$$($(BIN)/python -c "import secrets; print(secrets.token_hex(16))"); \
	echo ""; \
	echo "JupyterLab:   http://127.0.0.1:$(PORT)/lab/tree/quickstart.ipynb?token=$$TOKEN"; \
	echo "Deploy the seed flow (create or update: it works every time), then run it and get its outputs:"; \
	echo "  curl -X POST -H 'Authorization: token '$$TOKEN -H 'Content-Type: application/x-yaml' --data-binary @examples/myflow.yml 'http://127.0.0.1:$(PORT)/kestra/api/v1/flows/company.team?delete=false'"; \
	echo "  curl -X POST -H 'Authorization: token '$$TOKEN 'http://127.0.0.1:$(PORT)/kestra/api/v1/executions/company.team/myflow?wait=true'"; \
	echo ""; \
	$(BIN)/jupyter lab --ip 127.0.0.1 --port $(PORT) --no-browser --IdentityProvider.token=$$TOKEN --allow-root \
	  --ServerApp.root_dir=notebooks

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# Every notebook of notebooks/ run top to bottom on a fresh store and saved WITH its outputs (GitHub and
# nbviewer show the execution views' HTML twin; the suite runs them too), and the README's picture taken.
notebooks: $(STAMP) chromium
	$(BIN)/python -m tests.jupyter.notebook_run
	KESTRA_NB_UPDATE_DOCS=1 $(BIN)/python -m pytest -q tests/jupyter/test_browser_readme.py   # the README's picture

# A longer schemathesis pass over the OpenAPI document than the suite's (tests/security/test_fuzz.py).
FUZZ_EXAMPLES ?= 300
fuzz: $(STAMP)
	KESTRA_NB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/security/test_fuzz.py

# The peer engines (Dagster) are installed here only: the suite does not need them.
bench: $(STAMP)
	@$(BIN)/python -m pip install --quiet -e ".[test,bench,peers]"
	@status=0; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache
