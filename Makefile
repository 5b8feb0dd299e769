# The README's two commands: `make demo` and `make test`. Both bootstrap .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LINTED := gateway sidecar contract common devtools tests bench

.PHONY: demo test lint unit e2e security bench chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m devtools.demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy gateway sidecar contract common devtools bench

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m 'not e2e and not browser' $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m 'e2e or browser' $(PYTEST_ARGS)

# Every test docs/SECURITY.md cites as a proof (tests/security_claims.txt), and the check that the
# document and the list agree. -rs lists skipped proofs (nginx, chromium or systemd-analyze absent).
FUZZ_EXAMPLES ?= 60
security: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider -rs $(PYTEST_ARGS) \
		tests/test_security_claims.py $$(grep -v '^#' tests/security_claims.txt)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench $(ARGS)

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
