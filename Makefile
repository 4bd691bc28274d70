# tips-mmseg: `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# mmcv-lite by default (no compiled ops, installs anywhere); use EXTRAS=full,tests
# for full mmcv.
EXTRAS ?= lite,tests
PYTEST_ARGS ?=

.PHONY: venv test demo clean help

help:
	@echo "make demo   - set up .venv, write the toy data, train vanilla, BlurPool, APS, LPS, TIPS, write work_dirs/demo/report.md"
	@echo "make test   - set up .venv and run the whole test suite (CPU)"
	@echo "make venv   - only create .venv and install tips-mmseg with its test dependencies"

$(VENV)/.installed: setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -c "import tips_mmseg, mmseg.models"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(PY) tools/demo.py --work-dir work_dirs/demo

clean:
	rm -rf work_dirs build *.egg-info
