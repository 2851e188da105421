# The README's two commands. Both create what they need on a fresh clone (Python 3 and make).
PYTHON ?= python3
VENV := .venv
RUNTIME_VENV := .venv-runtime
GUI_VENV := .venv-gui
CV4_VENV := .venv-cv4
PIP_FLAGS := -q --disable-pip-version-check

.PHONY: demo test install runtime clean test-gui test-opencv4

install: $(VENV)/.installed
runtime: $(RUNTIME_VENV)/.installed

# The full toolkit: training, export, pruning, tests.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[all]'
	touch $@

# What a Raspberry Pi gets: numpy, OpenCV, onnxruntime, and no torch.
$(RUNTIME_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[runtime,dev]'
	touch $@

# A laptop's install: `gui` (OpenCV with window support) instead of `runtime`, never both.
$(GUI_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(GUI_VENV)
	$(GUI_VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[gui,bench,dev]'
	touch $@

demo: install
	$(VENV)/bin/edgevision demo

test: install runtime
	$(VENV)/bin/lint-imports
	EDGEVISION_RUNTIME_PYTHON=$(abspath $(RUNTIME_VENV))/bin/python $(VENV)/bin/python -m pytest

# The camera app's window on the GUI build of OpenCV, under Xvfb (the other venvs are headless, where
# these tests skip); and that with no display it still runs headless instead of aborting.
test-gui: $(GUI_VENV)/.installed
	$(GUI_VENV)/bin/python -m pytest -q tests/camera/test_display.py

# The overlay and the display decision on the newest OpenCV 4.x (pip brings 5.x everywhere else):
# the runtime install without torch, OpenCV held below 5 by constraints/opencv4.txt; onnx builds the
# camera tests' tiny model.
$(CV4_VENV)/.installed: pyproject.toml constraints/opencv4.txt
	$(PYTHON) -m venv $(CV4_VENV)
	$(CV4_VENV)/bin/python -m pip install $(PIP_FLAGS) -c constraints/opencv4.txt -e '.[runtime,dev]' 'onnx>=1.16'
	touch $@

test-opencv4: $(CV4_VENV)/.installed
	$(CV4_VENV)/bin/python -c "import cv2; v = cv2.__version__; assert v[:2] == '4.', v; print('OpenCV', v)"
	$(CV4_VENV)/bin/python -m pytest -q tests/camera/test_overlay.py tests/camera/test_display.py

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) $(GUI_VENV) $(CV4_VENV) build runs

# The Raspberry Pi path (Debian bookworm arm64) under qemu: the runtime tests, parity with x86 and a
# bench report inside a cached arm64 root (tools/arm64/check.sh; needs root, prints SKIPPED without).
.PHONY: test-arm64
test-arm64: install
	tools/arm64/check.sh $(abspath $(VENV))/bin/python
