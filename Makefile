# tips-mmseg: `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# mmcv-lite by default (no compiled ops, installs anywhere); use EXTRAS=full,tests
# for full mmcv.
EXTRAS ?= lite,tests
PYTEST_ARGS ?=
# mmcv-lite needs the start-up shim (compat/mmcv_lite_shim, docs/compatibility.md)
# for mmseg to import; with full mmcv it is not installed (and removed if a
# previous lite install left it).
SHIM_DIR := compat/mmcv_lite_shim
SHIM := $(if $(findstring lite,$(EXTRAS)),./$(SHIM_DIR),)

.PHONY: venv test demo clean help

help:
	@echo "make demo   - set up .venv, write the toy data, train vanilla, BlurPool, APS, LPS, TIPS, write work_dirs/demo/report.md"
	@echo "make test   - set up .venv and run the whole test suite (CPU)"
	@echo "make venv   - only create .venv and install tips-mmseg with its test dependencies"

$(VENV)/.installed: setup.py pyproject.toml $(SHIM_DIR)/setup.py $(SHIM_DIR)/tips_mmseg_mmcv_lite_shim.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(SHIM),,$(PY) -m pip uninstall -q -y tips-mmseg-mmcv-lite-shim)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]" $(SHIM)
	$(PY) -c "import tips_mmseg, mmseg.models"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(PY) tools/demo.py --work-dir work_dirs/demo

clean:
	rm -rf work_dirs build *.egg-info
