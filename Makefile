# The two commands: `make up` starts the embedded system, `make test` installs what the tests
# need and runs them. Both work on a fresh Debian/Ubuntu machine with Python 3.11+.

VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
# Real servers and tools the tests and benchmarks drive (slapd for LDAP; rsync, restic, sshd and pg_dump for
# the executor; chromium for the portal's browser tests; wrk for bench/ingest; curl, jq and restic
# run the client examples of docs/ingest.md).
DEB_PACKAGES = slapd ldap-utils rsync restic openssh-server postgresql-client chromium wrk valgrind curl jq

.PHONY: up test install system-packages lint pytest bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/backstop up

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check shared services tests bench
	$(BIN)/mypy shared services tests bench

pytest: install system-packages
	$(BIN)/pytest -q -n auto

test: lint pytest

bench: install system-packages
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.evaluator
	$(BIN)/python -m bench.end_to_end
	$(BIN)/python -m bench.portal.queries
	$(BIN)/python -m bench.portal.pages
	$(BIN)/python -m bench.executor.overhead
	$(BIN)/python -m bench.executor.scheduling

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
