# ops — make test installs what the tests need and runs them all.
PYTHON ?= python3
VENV   := .venv
PYTEST := $(VENV)/bin/python -m pytest -q -p no:cacheprovider
# A real rkt 1.30 and its stage1-fly.aci (beside it) for the live tests and the demo; ../shared/rkt when present.
OPS_TEST_RKT ?= $(wildcard ../shared/rkt/rkt)
export OPS_TEST_RKT

.PHONY: test deps unit unit-3.8 unit-3.13 live ansible demo bench pyz install clean

test: deps unit unit-3.8 unit-3.13 live ansible

deps:
	PYTHON=$(PYTHON) tools/install-test-deps.sh

unit:
	$(PYTEST) tests/unit

unit-3.8 unit-3.13: unit-%:
	.venv-$*/bin/python -m pytest -q -p no:cacheprovider tests/unit

live:
	$(PYTEST) -rs tests/live

ansible:
	$(PYTEST) tests/ansible

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
