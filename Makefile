# Every target creates .venv itself; nothing relies on packages installed by hand.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.11 on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test bench testset egl clean help

help:
	@echo "make demo     track the X-wing in the bundled clip with the shipped model (light install)"
	@echo "make test     install everything the tests need, then run them"
	@echo "make bench    our pipeline against the seed's approach (out/bench)"
	@echo "make testset  render the shared test set (data/test, 1000 images, seed 2026)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 not found on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Light inference install: numpy, OpenCV, ONNX Runtime, imageio, numba (the aligner's kernels). No torch, no GL.
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

# Everything: rendering, training, tests.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.core

# Headless EGL + Mesa for the renderer (llvmpipe on CPU machines).
egl:
	@if ldconfig -p | grep -q 'libEGL.so.1' && { ls /usr/lib/*/dri/swrast_dri.so /usr/lib/*/dri/*_dri.so >/dev/null 2>&1 || ldconfig -p | grep -q libEGL_mesa; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing EGL/Mesa (libegl1 libgl1-mesa-dri)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null; \
	else echo "error: EGL/Mesa missing; run: sudo apt-get install -y libegl1 libgl1-mesa-dri"; exit 1; fi

demo: $(VENV)/.core
	$(BIN)/xwing demo

test: $(VENV)/.dev egl
	$(BIN)/ruff check src tests scripts
	$(BIN)/lint-imports --no-cache
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected"; exit 1; fi; exit $$rc

bench: $(VENV)/.dev egl
	$(BIN)/xwing bench --out out/bench

testset: $(VENV)/.dev egl
	$(BIN)/xwing render data/test --count 1000 --seed 2026 --workers 2

clean:
	rm -rf $(VENV) out
