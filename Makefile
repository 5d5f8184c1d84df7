# karyotf: the two commands a fresh machine needs are `make demo` and `make test` (`make test-fast` skips the slow tests).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -c constraints.txt

.PHONY: install demo demo-train default-model test test-fast bench-quality bench-speed clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py constraints.txt requirements.txt requirements-nodeps.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q pip==24.3.1 setuptools==75.6.0 wheel==0.45.1
	$(PIP) -r requirements.txt -r requirements-dev.txt
	$(PIP) --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/karyotf doctor --quick
	touch $@

test: install
	$(BIN)/python -m pytest -q tests

# the edit-test loop: everything but the tests marked slow (training, export, the notebook); about 2-3 min on 2 cores
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests

# the main job: the model pair shipped with karyotf karyotypes the built-in sample (about a minute)
demo: install
	$(BIN)/karyotf demo

# the training walk-through: records, a demo-length detector and classifier, export, eval, karyograms (minutes)
demo-train: install
	$(BIN)/karyotf demo --train

# the recipe of the shipped pair (hours on 2 cores; resumable): CIL_TRAIN= the output of ../shared/tools/cil54816_train.py
default-model: install
	$(BIN)/python bench/default_model.py --cil-train $(CIL_TRAIN) --pack

clean:
	rm -rf $(VENV) build *.egg-info
