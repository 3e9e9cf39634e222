# yiwang — one command to run the platform, one to test it. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test test-fast lint contracts contracts-check bench chaos clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## make run: NATS + every service on SQLite + the gateway on :8000, demo data loaded. Ctrl-C stops all.
run: install
	$(BIN)/python -m tools.run

## make demo: journeys J1–J7, J9, J10 through the gateway, one line per step, in well under a minute; uses the
## platform `make run` started, or starts one (and stops it again). Exit 0 only if every journey worked.
demo: install
	$(BIN)/python -m tools.demo $(DEMO_ARGS)

## make test: the whole suite (PostgreSQL too when TEST_POSTGRES_URL is set), then the style gates.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m contracts.generate --check

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## make contracts: regenerate contracts/schemas and asyncapi.json from the pydantic event models.
contracts: install
	$(BIN)/python -m contracts.generate

contracts-check: install
	$(BIN)/python -m contracts.generate --check

## make chaos: the cluster topology (own PostgreSQL, 3 NATS nodes, 2 replicas of each service) under 300 s of
## load while NATS nodes, a caseflow replica and PostgreSQL are killed; fails on anything lost or doubled
## (docs/reliability.md). CHAOS_ARGS="--duration 600 --workers 48" for another run.
chaos: install
	$(BIN)/python -m tools.chaos --duration 300 --replicas 2 $(CHAOS_ARGS)

## make bench: throughput benchmarks; results go to docs/benchmarks.md by hand, with the date.
## (gateway, express and replicas need wrk, gateway nginx: apt-get install wrk nginx; caseflow, replicas, licence and express
##  need PostgreSQL, BENCH_POSTGRES_URL;
##  licence loads 10 million licences, ≈ 6 GB and ≈ 10 minutes: BENCH_LICENCES=200000 for a quick run)
bench: install
	$(BIN)/python -m bench.identity_bench
	$(BIN)/python -m bench.catalog_bench
	$(BIN)/python -m bench.gateway_bench
	$(BIN)/python -m bench.workers_bench
	$(BIN)/python -m bench.caseflow_bench
	$(BIN)/python -m bench.replicas_bench
	$(BIN)/python -m bench.licence_bench
	$(BIN)/python -m bench.express_bench
	$(BIN)/python -m bench.hall_bench
	$(BIN)/python -m bench.approve_to_shipment

clean:
	rm -rf .data
