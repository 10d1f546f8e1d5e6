# Circuits from Scratch. The two commands a learner needs:
#   make lab    set up .venv/ (first time only) and open the course in JupyterLab
#   make test   set up .venv/ (first time only) and run every test and every notebook
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST := $(PY) -m pytest
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=600

# The CPU numerics the zoo is built and checked with (course_utils/zoo_numerics.env, the one place
# that defines them), exported to every command below so that torch sees them when it is imported.
# On x86-64 only; a value already in the environment wins (the retrain tests then say what they did).
ifeq ($(filter x86_64 amd64,$(shell uname -m)),$(shell uname -m))
$(foreach line,$(shell grep -E '^[A-Z_]+=' course_utils/zoo_numerics.env),$(eval export $(firstword $(subst =, ,$(line))) ?= $(lastword $(subst =, ,$(line)))))
endif

# JupyterLab refuses to start as root (containers, cloud machines) unless told it may.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.PHONY: lab test test-fast test-notebook test-slow test-browser exercises bench zoo zoo-seeds clean chromium grade lint

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The course's JupyterLab defaults (tools/jupyterlab_overrides.json: no news or update prompt on first
# start, nothing fetched from the internet), where JupyterLab reads defaults; a learner's own settings win.
LAB_DEFAULTS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_DEFAULTS): tools/jupyterlab_overrides.json $(STAMP)
	@mkdir -p $(dir $@) && cp $< $@

lab: $(STAMP) $(LAB_DEFAULTS)
	$(VENV)/bin/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks/

# Unit tests (every zoo model retrained to an early checkpoint of its shipped history), the browser
# test (executes every solution notebook, exports it to HTML and opens it in headless Chromium: each
# solution runs once, there), then nbval over every exercise notebook, in one pytest run. The full
# retrains are `make test-slow`; CI (.ci/run) runs both. TEST_WORKERS pytest processes (pytest-xdist),
# each with one torch thread, share the files out (a notebook's cells stay in one process): on 2 cores
# 9 min 20 s against 25 min 51 s for one process with 2 threads (benchmarks/README.md). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(LAB_DEFAULTS) chromium
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) tests notebooks -m "not slow" $(NBVAL) -n $(TEST_WORKERS) --dist loadfile

# Unit tests only, without retraining the zoo or running notebooks (seconds).
test-fast: $(STAMP)
	$(PYTEST) tests -m "not slow and not browser and not notebook"

# The solution notebooks in headless Chromium; screenshots and pages in build/browser/.
test-browser: $(STAMP) $(LAB_DEFAULTS) chromium
	$(PYTEST) tests -m browser

# Debian's Chromium for the browser test, installed when missing (needs root, as in CI).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { test "$$(id -u)" = 0 || { echo "make: the browser test needs Chromium: sudo apt-get install chromium" >&2; exit 1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Run a learner's notebook, check each exercise's function with the course's own check, and print
# PASS or the check's message; build/grade/report.txt and report.json hold the same (README, "In a
# classroom", says what a PASS proves). A class: python tools/grade.py class/*.ipynb --out results/
#   make grade NOTEBOOK=path/to/their_notebook.ipynb
grade: $(STAMP)
	@test -n "$(NOTEBOOK)" || { echo "usage: make grade NOTEBOOK=path/to/notebook.ipynb" >&2; exit 2; }
	@$(PY) tools/grade.py "$(NOTEBOOK)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# One notebook: make test-notebook NB=solutions/01_build_a_two_layer_transformer.ipynb
test-notebook: $(STAMP)
	$(PYTEST) $(NB) $(NBVAL)

# Retrains every zoo model and compares with the shipped weights and cards (minutes).
test-slow: $(STAMP)
	$(PYTEST) tests -m slow

# Regenerate notebooks/ from solutions/ (the solutions are the source), and normalise solutions/:
# outputs stripped, the Colab set-up cell first, the Open-in-Colab badge on every exercise notebook.
exercises: $(STAMP)
	$(PY) tools/make_exercises.py

# Speed and memory figures, as ratios against baselines measured in the same run (about 15 minutes:
# it runs the whole test suite once). The figures and targets are in benchmarks/README.md.
bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/induction_formation.py
	$(PY) benchmarks/notebooks.py
	$(PY) benchmarks/real_model_sections.py
	$(PY) benchmarks/test_suite.py

# Retrain and rewrite the shipped weights and cards (course_utils/zoo_weights/), with the zoo's
# numerics (above); each card records them and the checksum of every file.
zoo: $(STAMP)
	$(PY) -m maintainer.zoo_build build
	$(PY) -m maintainer.superposition_study sae

# Retrain the zoo's recipes with seeds 1-3 and record the seed-to-seed spread in the cards
# (notebooks' thresholds, and the retrain tests on machines without the zoo's numerics, use it).
# About 45 minutes on 2 cores (estimated from single runs: the first three recipes about 20, the
# grokking and multiple-choice pairs 1.5-2 minutes a run); resumable from runs/seeds/.
zoo-seeds: $(STAMP)
	$(PY) -m maintainer.zoo_build seeds attn_only_2l runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds attn_only_1l runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds ln_mlp_4l runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds grokking runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds grokking_no_wd runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds mc_fixed runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds mc_random runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds request_tasks runs/seeds 1 2 3
	$(PY) -m maintainer.zoo_build seeds in_context_regression runs/seeds 1 2
	$(PY) -m maintainer.zoo_build phase-change
	$(PY) -m maintainer.superposition_study

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
