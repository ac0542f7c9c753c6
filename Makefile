# ops — make test installs what the tests need and runs them all.
PYTHON ?= python3
VENV   := .venv
PYTEST := $(VENV)/bin/python -m pytest -q -p no:cacheprovider
# pytest-xdist workers for the unit suites (auto: one per core) and the live one (one container each)
JOBS      ?= auto
LIVE_JOBS ?= 2
# more pytest arguments for every suite (tools/run-suites.py passes --junitxml here)
PYTEST_ARGS ?=
SUITES := unit unit-3.8 unit-3.13 live ansible
# A real rkt 1.30 and its stage1-fly.aci (beside it) for the live tests and the demo: ../shared/rkt when
# present, beside this checkout or beside the checkout it was cloned from (git clone . /tmp/x); without one
# the live tests that need it fail saying so (OPS_TEST_RKT=0 skips them).
OPS_TEST_RKT ?= $(firstword $(wildcard ../shared/rkt/rkt $(shell git config --get remote.origin.url 2>/dev/null)/../shared/rkt/rkt))
export OPS_TEST_RKT

.PHONY: test deps unit unit-3.8 unit-3.13 live ansible demo bench pyz install clean

# Every suite runs, even after one fails; one summary at the end, exit 1 if any failed.
test: deps
	MAKE="$(MAKE)" $(PYTHON) tools/run-suites.py $(SUITES)

deps:
	PYTHON=$(PYTHON) tools/install-test-deps.sh

unit:
	$(PYTEST) -n $(JOBS) tests/unit $(PYTEST_ARGS)

# the oldest and newest supported Pythons run the version-sensitive tests (marked compat, see pytest.ini)
unit-3.8 unit-3.13: unit-%:
	.venv-$*/bin/python -m pytest -q -p no:cacheprovider -n $(JOBS) -m compat tests/unit $(PYTEST_ARGS)

# each test module boots its own container: modules run side by side, a module's tests in order on one worker
live:
	$(PYTEST) -rs -n $(LIVE_JOBS) --dist loadfile tests/live $(PYTEST_ARGS)

# each test module boots its own containers (the fleet twelve): modules side by side, as the live suite
ansible:
	$(PYTEST) -n $(LIVE_JOBS) --dist loadfile tests/ansible $(PYTEST_ARGS)

demo: deps
	$(VENV)/bin/python examples/demo.py

bench: deps
	$(VENV)/bin/python bench/run.py

pyz:
	$(PYTHON) tools/build_pyz.py dist/ops.pyz

install:
	$(PYTHON) -m pip install .

clean:
	rm -rf dist build *.egg-info .venv .venv-3.8 .venv-3.13
