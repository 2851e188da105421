# The README's two commands. Both create what they need on a fresh clone (Python 3 and make).
PYTHON ?= python3
VENV := .venv
RUNTIME_VENV := .venv-runtime
GUI_VENV := .venv-gui
NEWEST_VENV := .venv-newest
LOWEST_VENV := .venv-lowest
PIP_FLAGS := -q --disable-pip-version-check
# The exact versions CI tested (`make lock` refreshes it); every install below but the range jobs uses it.
LOCK := constraints/lock.txt

.PHONY: demo test install runtime clean test-gui test-newest test-lowest lock

install: $(VENV)/.installed
runtime: $(RUNTIME_VENV)/.installed

# The full toolkit: training, export, pruning, tests.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -c $(LOCK) -e '.[all]'
	touch $@

# What a Raspberry Pi gets: numpy, OpenCV, onnxruntime, and no torch.
$(RUNTIME_VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install $(PIP_FLAGS) -c $(LOCK) -e '.[runtime,dev]'
	touch $@

# A laptop's install: `gui` (OpenCV with window support) instead of `runtime`, never both.
$(GUI_VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(GUI_VENV)
	$(GUI_VENV)/bin/python -m pip install $(PIP_FLAGS) -c $(LOCK) -e '.[gui,bench,dev]'
	touch $@

demo: install
	$(VENV)/bin/edgevision demo

test: install runtime
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	EDGEVISION_RUNTIME_PYTHON=$(abspath $(RUNTIME_VENV))/bin/python $(VENV)/bin/python -m pytest

# The camera app's window on the GUI build of OpenCV, under Xvfb (the other venvs are headless, where
# these tests skip); and that with no display it still runs headless instead of aborting.
test-gui: $(GUI_VENV)/.installed
	$(GUI_VENV)/bin/python -m pytest -q tests/camera/test_display.py

# The dependency ranges of pyproject.toml, on a torch-free install (`runtime,bench,dev`; onnx builds the
# tests' tiny models): the runtime, camera and report tests with the NEWEST versions the ranges allow
# (re-resolved on every run, no lock: the job that catches a new major such as OpenCV 5) and with the
# LOWEST (constraints/lowest.txt, the lower bounds; it also covers OpenCV 4.x, whose text drawing
# differs from 5.x). Each prints the versions it got.
RANGE_TESTS := tests/runtime tests/camera tests/unit/test_deploy_*.py tests/unit/test_runtime_defaults.py \
	tests/unit/test_cli_util.py tests/unit/test_quiet.py tests/unit/test_bench_*.py tests/unit/test_benchmarks.py \
	tests/bad_inputs/test_reports.py
RANGE_PACKAGES := numpy|opencv-python-headless|onnxruntime|tqdm|matplotlib|onnx|pytest|hypothesis

test-newest:
	$(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade --upgrade-strategy eager -e '.[runtime,bench,dev]'
	@$(NEWEST_VENV)/bin/python -m pip list --format=freeze | grep -iE '^($(RANGE_PACKAGES))==' | tr '\n' ' ' && echo
	$(NEWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(RANGE_TESTS)

test-lowest:
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install $(PIP_FLAGS) -c constraints/lowest.txt -e '.[runtime,bench,dev]'
	@$(LOWEST_VENV)/bin/python -m pip list --format=freeze | grep -iE '^($(RANGE_PACKAGES))==' | tr '\n' ' ' && echo
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(RANGE_TESTS)

# Refresh constraints/lock.txt: every extra (and `gui`'s OpenCV wheel) resolved afresh in a scratch venv
# and frozen. Then `make clean test` and commit the lock with what it changed.
lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install $(PIP_FLAGS) -e '.[all,gui]'
	{ sed -n '/^#/p' $(LOCK); build/lock-venv/bin/python -m pip freeze --exclude-editable | LC_ALL=C sort -f; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf build/lock-venv

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) $(GUI_VENV) $(NEWEST_VENV) $(LOWEST_VENV) build runs

# The Raspberry Pi path (Debian bookworm arm64) under qemu: the runtime tests, parity with x86 and a
# bench report inside a cached arm64 root (tools/arm64/check.sh; needs root, prints SKIPPED without).
.PHONY: test-arm64
test-arm64: install
	tools/arm64/check.sh $(abspath $(VENV))/bin/python

# One command for anyone with an NVIDIA GPU: TensorRT engines (fp32, fp16, int8) built here from `make
# demo`'s ONNX, onnxruntime-gpu's CUDA and TensorRT providers, PyTorch CUDA eager fp32/fp16/bf16: verify,
# top-1 and p50/p99 at batch 1 and 8 in one table (runs/gpu-check/gpu_check.md). Runs what is installed
# and names what it skips; without a GPU, a dry run (CI runs it). No install step: the PyTorch rows need
# only torch with CUDA and numpy (OpenCV for top-1), from this checkout. GPU_CHECK_ARGS: e.g. --artifacts DIR --out DIR.
GPU_CHECK_PYTHON ?= $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,$(PYTHON))
.PHONY: gpu-check
gpu-check:
	PYTHONPATH=$(CURDIR) $(GPU_CHECK_PYTHON) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)
