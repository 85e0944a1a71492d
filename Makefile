# The two commands: `make demo` and `make test`. Both set up everything they need themselves.
# `make bench` runs bench/ (`make bench BENCH=scan` runs only the benchmarks whose name contains `scan`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Real peers the tests talk to (see tests/integration): a client we did not write for every lab case, the
# servers whose configs discovery reads (nginx, haproxy, apache2), promtool (prometheus), Alertmanager, and
# keytool and javac (openjdk JDK) to write real Java keystores and run a Java TLS client, certutil and tstclnt
# (libnss3-tools) for real NSS databases and NSS's own client, node (the trust-store tests; an installed nodesource
# `nodejs` satisfies it), chromium for the browser tests (Playwright drives it), and for the certificate lifecycle:
# pebble (Let's Encrypt's ACME test server), certbot and lego (real ACME clients of our server), softhsm2 + opensc
# (a PKCS#11 token for the CA root key) and bind9 (named accepts RFC 2136 updates for dns-01); tinyproxy: the
# HTTP proxy that revocation fetches go through when http_proxy / https_proxy are set.
DEBIAN_PACKAGES := openssl curl nmap postgresql postgresql-client mariadb-client sslscan nginx haproxy apache2 prometheus prometheus-alertmanager libnginx-mod-stream \
	openjdk-17-jre-headless openjdk-17-jdk-headless chromium libnss3-tools nodejs \
	pebble certbot lego softhsm2 opensc bind9 bind9-dnsutils tinyproxy
# Peers only the benchmarks run (bench/bench_deep.py), installed by `make bench` on top of DEBIAN_PACKAGES.
BENCH_PACKAGES := testssl.sh prometheus-blackbox-exporter goaccess

.PHONY: install system-deps bench-deps lint test demo bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

system-deps:
	scripts/install-system-deps.sh $(DEBIAN_PACKAGES)

bench-deps: system-deps
	scripts/install-system-deps.sh $(BENCH_PACKAGES)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# scripts/run-tests.sh: the broker tests (they stop the shared Redis/RabbitMQ for 30 s) run in a second pytest
# process beside the rest of the suite, which pytest-xdist runs in 2 workers: well under 10 minutes on 2 cores.
test: $(STAMP) system-deps lint
	scripts/with-postgres.sh scripts/run-tests.sh $(BIN)/pytest

demo: $(STAMP)
	scripts/demo.sh

bench: $(STAMP) bench-deps
	$(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
