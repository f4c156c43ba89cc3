# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make run    the hub on the embedded default with the simulated CRM and IOM systems
#   make test   the whole test suite, with the real servers it starts on loopback
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run demo test test-servers lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,otel]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/esb lint
	$(BIN)/esb run --simulate --log-format console

demo: install
	$(BIN)/esb demo --messages 200

test-servers:
	./scripts/install-test-servers.sh

# The unit tests on every core; then everything else against the servers the fixtures start on loopback
# (one of each per pytest-xdist worker), on two workers, a whole file each (a module's fixtures, and the
# server restarts of its fault tests, stay on one worker): the integration, contract and route tests, then
# the end-to-end and browser tests (whole hubs and demos, each on free ports), separately so that two whole
# hubs at most share the cores; the SIGKILL load tests, timed in seconds, are one unit that one worker runs
# one after the other (tests/conftest.py, ONE_AFTER_ANOTHER; bench/README.md, "The test suite's wall time").
HUB_TESTS := tests/e2e tests/browser

test: install test-servers
	ESB_REQUIRE_SERVERS=1 $(BIN)/pytest -q -p no:cacheprovider -n auto tests/unit
	ESB_REQUIRE_SERVERS=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --ignore=tests/unit \
		$(HUB_TESTS:%=--ignore=%) tests
	ESB_REQUIRE_SERVERS=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile $(HUB_TESTS)

lint: install
	$(BIN)/ruff check esb adapters simulators tests bench
	$(BIN)/esb lint

typecheck: install
	$(BIN)/mypy

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
