# One entry point for people and CI. Every target sets itself up: a fresh machine needs only Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE_CONFIG ?= sample_data/sample_service.yml
OUT    ?= workbooks

.PHONY: help setup workbook test lint format book lab bench browser-deps links clean sample-data nbval-expected

help:
	@echo "make workbook   set up, then build the sample service's workbook (under a minute, plus any downloads)"
	@echo "make test       set up, then run every check: lint, unit, notebooks, book, workbook, browser"
	@echo "make book       build the book into _build/html"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      run the benchmarks (not part of make test)"
	@echo "make links      check the book's external links (needs internet; never blocks)"

# Matplotlib lists the computer's fonts the first time it is used: setting up does it once.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -c "import matplotlib.font_manager"
	@touch $(STAMP)

# pip compiles the packages it installs, but not this one (it is installed in place, and
# changes with every update): every setup compiles whatever has changed in it (a tenth of a
# second when nothing has), so a workbook run finds it compiled.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q equity_helpers

workbook: setup
	$(BIN)/equity-workbook run --config $(SAMPLE_CONFIG) --out $(OUT)

# Browser tests drive Debian's Chromium; Playwright's own browser download is not available offline.
# The PDF tests read the printed workbook back with poppler's pdftotext and pdftoppm.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's chromium and poppler-utils for the browser and PDF tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; \
	  else \
	    echo "The browser and PDF tests need Chromium and poppler: run 'sudo apt-get install chromium poppler-utils' and try again."; exit 1; \
	  fi; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests run on one pytest-xdist worker per core, at most two (pyproject.toml);
# `make test TEST_WORKERS=0` runs them in one process.
TEST_ARGS := $(if $(TEST_WORKERS),-n $(TEST_WORKERS))
test: setup browser-deps lint
	$(BIN)/python -m pytest $(TEST_ARGS) --durations=15

# Jupyter Book reuses a notebook's outputs while the notebook's text is unchanged, and Sphinx
# reads again only the pages whose text changed; when the package that computes the outputs
# changes, both records are dropped, so every page is read and every figure is fresh.
book: setup
	@hash=$$(cat $$(find equity_helpers -name '*.py' | sort) | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.package-hash 2>/dev/null)" != "$$hash" ]; then \
	  rm -rf _build/.jupyter_cache _build/.doctrees; mkdir -p _build; echo "$$hash" > _build/.package-hash; \
	fi
	$(BIN)/jupyter-book build . -n -W --keep-going

lab: setup
	$(BIN)/jupyter lab --notebook-dir=.

bench: setup
	$(BIN)/python benchmarks/run.py

links: setup
	-$(BIN)/jupyter-book build . --builder linkcheck

sample-data: setup
	$(BIN)/python sample_data/generate.py

# Regenerate the stored outputs of the nbval contract after an intended change.
nbval-expected: setup
	$(BIN)/papermill tests/nbval/headlines.ipynb tests/nbval/headlines.ipynb --cwd . -k python3

clean:
	rm -rf _build $(OUT) .jupyter_cache test-output
