# kerastack: `make run` sets everything up and runs the main job; `make test` sets up and tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-all test-fast lint format install clean bench bench-edge bench-scale zoo zoo-pretrained parity compat

run: $(STAMP)
	$(VENV)/bin/kerastack run

# Two workers: most tests wait on child processes (imports, conversions), so two run side by side
# on two cores; --dist loadfile keeps each file's fixtures in one worker.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# Everything make test runs, and the sweeps it leaves out (tests marked `sweep`: the same check on
# more backends, faults at random moments): about 870 test-seconds more, ~7 min on 2 cores.
test-all: $(STAMP)
	KERASTACK_TEST_ALL=1 $(PY) -m pytest -q -n 2 --dist loadfile

# The architecture, checked: ruff (style, errors) and import-linter's contracts in pyproject.toml
# (the kernel imports no wing, plugins use core's public API only, tflite/ needs no framework, no cycles).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)  ## rewrite the tree as ruff format and ruff check --fix want it
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-fast: $(STAMP)  ## the tests that need no training (seconds)
	$(PY) -m pytest -q -m "not slow"

install: $(STAMP)

$(STAMP): requirements.txt requirements-extras.txt requirements-dev.txt requirements-mediapipe.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# MediaPipe Tasks, without pip's resolver: see requirements-mediapipe.txt (absl-py 2 beside tfmot).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-mediapipe.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) .venv-compat runs .pytest_cache

bench: $(STAMP)  ## measurements side by side (minutes; not run by CI): bench/results.md
	$(PY) bench/run.py

bench-edge: $(STAMP)  ## quantization, QAT and pruning against the edge goals (not run by CI): bench/edge.md
	$(PY) bench/edge.py

bench-scale: $(STAMP)  ## samples/s of 1 against 2 processes per backend (not run by CI): bench/scale.md
	$(PY) bench/scale.py

zoo: $(STAMP)  ## every architecture family x backend, then float32/int8 LiteRT (not run by CI): bench/zoo.md
	$(PY) bench/zoo.py

parity: $(STAMP)  ## backend x converter x mode on LiteRT, and the int8 collapse's remedies (not run by CI): bench/parity.md
	$(PY) bench/parity.py

zoo-pretrained: $(STAMP)  ## each pretrained backbone: freeze, fine-tune, float32/int8 LiteRT (not run by CI): bench/pretrained.md
	$(PY) bench/pretrained.py

# An older runtime in a side venv: tflite-runtime 2.14.0 needs numpy < 2, which the project's venv cannot hold.
.venv-compat/.installed: requirements-compat.txt
	test -x .venv-compat/bin/python || $(PYTHON) -m venv .venv-compat
	.venv-compat/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-compat.txt
	touch $@

compat: $(STAMP) .venv-compat/.installed  ## every zoo family's float32/int8 files on tflite-runtime 2.14.0 (not run by CI): bench/compat.md
	$(PY) bench/compat.py --side .venv-compat/bin/python
