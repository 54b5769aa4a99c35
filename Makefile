# mmdet-gghost: `make demo` (the main job) and `make test`.
PYTHON_SYS ?= python3.11
VENV       ?= .venv
PY         := $(VENV)/bin/python
DEMO_DIR   ?= work_dirs/demo
PAPER_DIR  ?= work_dirs/demo_paper
PAPER_SEEDS ?= 0 1
# e.g. PAPER_SCALE="6 4": pre-training / detector N times the quick demo's
# (empty: tools/demo.py's default)
PAPER_SCALE ?=
# trainings side by side (one process each, an equal share of the cores)
PAPER_JOBS ?= 2
PYTEST_ARGS ?=
# pytest-xdist workers (auto: one per core; 0: one process); a test file
# runs in one worker, so its module fixtures are built once
TEST_WORKERS ?= auto

.PHONY: setup test demo demo-paper demo-cls clean-demo

setup:
	@$(PYTHON_SYS) tools/setup_env.py --venv $(VENV)

test: setup
	$(PY) -m pytest -ra -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) tests

demo: setup
	$(PY) tools/demo.py --work-dir $(DEMO_DIR) --only det

demo-paper: setup
	$(PY) tools/demo.py --work-dir $(PAPER_DIR) --only det --paper --seeds $(PAPER_SEEDS) \
		--jobs $(PAPER_JOBS) \
		$(if $(PAPER_SCALE),--paper-scale $(PAPER_SCALE))

demo-cls: setup
	$(PY) tools/demo.py --work-dir $(DEMO_DIR) --only cls

clean-demo:
	rm -rf $(DEMO_DIR) data/demo_det data/demo_cls
