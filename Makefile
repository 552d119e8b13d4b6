# Two commands on a fresh clone: `make run` and `make test`. Each builds .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint-imports bench install lint clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/syndication run --example

# Three pytest-xdist workers, each taking whole files (a module's shared stack stays in one
# process); each worker wipes only its own PostgreSQL schema. Three on two cores, because the
# integration tests mostly wait on processes they started (measured: 7.0 min with 3, 8.8 min with
# 2, for the whole suite with PostgreSQL on a loaded machine). TEST_WORKERS=0 runs serially.
# --no-loadscope-reorder keeps the collection order (tests/conftest.py puts the longest modules
# first): by default xdist hands out the files with the most tests first, which left the
# one-test, minute-long scenarios to run alone at the end.
TEST_WORKERS ?= 3

test: lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Unit tests only: no redis-server, no worker processes (about half a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

# The layers (pyproject's [tool.importlinter]): entry points -> workers -> the domain -> config.
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

# Rewrite docs/screenshots/ (the README's) from the browser test; `make test` leaves them alone.
screenshots: $(STAMP)
	SYNDICATION_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf var bench/.work .pytest_cache
