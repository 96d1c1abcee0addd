# Sibyl: set-up, run, test and benchmark targets. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench bench-peers clean conformance genesis

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[node,sidecars,embed,llm,test]'
	touch $@

# The embedded default: a fresh dev chain with the bundled CPU models.
dev: $(STAMP)
	$(BIN)/sibyl run --dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/pytest

# Ethereum's BlockchainTests through `sibyl init` + `sibyl import`: the committed sample,
# or any fixture files or folders (`make conformance FIXTURES=path/to/BlockchainTests`).
FIXTURES ?= tests/conformance/fixtures
JOBS ?= 2
conformance: $(STAMP)
	$(BIN)/python -m tests.conformance.blockchain_tests $(FIXTURES) --jobs $(JOBS) --failures

# genesis/dev.json from its own sibyl section: run after editing that section.
genesis: $(STAMP)
	$(BIN)/sibyl genesis complete genesis/dev.json

bench: $(STAMP)
	$(BIN)/python bench/node_bench.py
	$(BIN)/python bench/sidecar_dispatch.py
	$(BIN)/python bench/ai_bench.py
	$(BIN)/python bench/scheduler_bench.py
	$(BIN)/python bench/jobs_bench.py
	$(BIN)/python bench/zk_bench.py
	$(BIN)/python bench/attack_bench.py

# Sibyl beside anvil and hardhat node (their npm packages in bench/js); under 10 minutes.
bench/js/node_modules/.package-lock.json: bench/js/package-lock.json
	cd bench/js && npm ci --no-audit --no-fund
	touch $@

bench-peers: $(STAMP) bench/js/node_modules/.package-lock.json
	$(BIN)/python bench/peers.py

clean:
	rm -rf $(VENV) tests/js/node_modules bench/js/node_modules .pytest_cache .ruff_cache
