# The two set-up commands in the README are `make demo` and `make test`; both refresh .venv/.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv system-deps demo test lint unit integration bench

venv:
	@scripts/venv.sh

demo: venv
	$(BIN)/tritonkit demo

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p tritonkit

system-deps:
	@scripts/ci-system-deps.sh

test: venv system-deps lint
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest tests/integration

# Regenerates the figures and the table of docs/BENCHMARKS.md (several minutes).
bench: venv
	scripts/bench.sh
