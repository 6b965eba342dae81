# Two commands from a fresh clone: `make demo` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# Network rule: every ROS process started from here stays on loopback, in its own domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 73
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" on a
# machine whose pip would otherwise fetch the large CUDA build of torch from PyPI.
PIP_ARGS ?=
# Keep the two cores for the work itself.
export OMP_NUM_THREADS ?= 2

STAMP := $(VENV)/.installed-$(shell cat requirements.txt setup.py setup.cfg package.xml 2>/dev/null | md5sum | cut -c1-12)

.PHONY: setup demo test test-fast colcon-test clean-venv

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "$(VENV) runs Python " + sys.version.split()[0] + "; the ROS 2 wheels need 3.11: make clean-venv, then make <target> PYTHON=python3.11")'
	@echo "== installing pinned dependencies into $(VENV) (first run only, ~2-4 min) =="
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

demo: setup
	$(PY) -m crossmodal_ros.ros.demo

test: setup
	$(PY) -m pytest -q test

# unit tests only: no test that starts ROS or takes more than a few seconds (markers in setup.cfg)
test-fast: setup
	$(PY) -m pytest -q test -m "not slow and not ros"

# colcon build + colcon test in a throwaway workspace (pinned colcon from PyPI; README, "On a robot")
colcon-test: setup
	bash .ci/colcon_test

clean-venv:
	rm -rf $(VENV)

# ---- benchmarks (benchmarks/README.md). multivae lives only in benchmarks/.venv-multivae.
BENCH_VENV ?= benchmarks/.venv-multivae
BENCH_PY := $(BENCH_VENV)/bin/python
.PHONY: bench-env bench

bench-env:
	bash benchmarks/setup_multivae.sh

# The two comparisons run in the multivae venv (one process, one torch for both sides); the
# scaling and ROS benchmarks run in the project venv, i.e. the node's own environment.
bench: setup bench-env
	@uptime
	nice -n 5 $(BENCH_PY) benchmarks/bench_inference.py
	$(PY) benchmarks/plot_inference.py
	nice -n 5 $(BENCH_PY) benchmarks/bench_training.py
	nice -n 5 $(PY) benchmarks/bench_inference.py --out benchmarks/results/project-venv
	nice -n 5 $(PY) benchmarks/bench_scaling.py
	nice -n 5 $(PY) benchmarks/bench_backends.py
	nice -n 5 $(PY) benchmarks/bench_ros_latency.py
	nice -n 5 $(PY) benchmarks/bench_ros_latency.py --frame vga --runs shipped:image,shipped:latent
	nice -n 5 $(PY) benchmarks/bench_idle.py
