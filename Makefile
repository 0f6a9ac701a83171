# autoprune: `make demo` runs the main job, `make test` runs the tests.
# Both install what they need into .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
# torchvision's release for that torch: its model definitions are the zoo's (benchmarks/zoo.py)
TORCHVISION_SPEC ?= torchvision==0.28.0
STAMP  := $(VENV)/.installed
ZOO_STAMP := $(VENV)/.installed-zoo
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install data test test-fast demo bench bench-deps bench-quick bench-structured bench-reliability lint clean

install: $(STAMP) $(ZOO_STAMP) data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The pinned CPU build of torch goes first, so nothing pulls in a CUDA build.
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx,cluster,transformers]"
	touch $(STAMP)

# PyPI's torchvision is a CUDA build: installed without its dependencies (no second torch) into a
# folder of its own, off the path (transformers would import it and fail on its compiled operators);
# benchmarks/_torchvision.py imports the model definitions from there.
$(ZOO_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/torchvision "$(TORCHVISION_SPEC)"
	touch $(ZOO_STAMP)

# Debian packages the tests and the demo need, when they are missing and we are allowed to install them:
# Fashion-MNIST (the data), PostgreSQL (a real database for the multi-worker tests) and Chromium
# (a headless browser that opens the HTML report).
# $(call debian,MISSING,PACKAGE,FOR,OTHERWISE): install PACKAGE when the shell test MISSING holds
# and we are root with apt-get; else print OTHERWISE.
define debian
	@if $(1); then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "Installing the Debian package $(2) ($(3))"; \
	    apt-get update -qq && apt-get install -y -qq $(2); \
	  else \
	    echo "$(4)"; \
	  fi; \
	fi
endef

data:
	$(call debian,[ -z "$$AUTOPRUNE_FASHION_MNIST" ] && [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ],dataset-fashion-mnist,the data,Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' or set AUTOPRUNE_FASHION_MNIST)
	$(call debian,! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1,postgresql,for the multi-worker tests,PostgreSQL is missing: the multi-worker database tests will be skipped ('sudo apt-get install postgresql'))
	$(call debian,! command -v chromium >/dev/null 2>&1,chromium,for the test that opens the HTML report,Chromium is missing: the headless-browser test of the report will be skipped ('sudo apt-get install chromium'))

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

demo: install
	$(BIN)/autoprune demo

MODELOPT_STAMP := $(VENV)/.modelopt-installed

# NVIDIA Model Optimizer for the benchmark's FastNAS rows (CPU): its own requirements from the
# modelopt extra, then the package and torchprofile with --no-deps (they would pull a CUDA torch).
bench-deps: $(MODELOPT_STAMP)

$(MODELOPT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[modelopt]"
	$(BIN)/python -m pip install --quiet --no-deps "nvidia-modelopt==0.47.0" "torchprofile==0.0.4"
	touch $(MODELOPT_STAMP)

# The full comparison (3 tasks, both regimes, 5 seeds; about 4.8 h on 2 cores, resumable).
bench: install bench-deps
	$(BIN)/python -m benchmarks compare

# One seed, two budgets per task (at most 15 min on 2 idle cores).
bench-quick: install bench-deps
	$(BIN)/python -m benchmarks compare --quick

# The structured target on fashion-cnn: at most 25% of the parameters and 0.6x measured latency at once.
bench-structured: install
	$(BIN)/autoprune search --task fashion-cnn --budget params=0.25 --budget latency=0.6 \
	  --space structured --trials 30 --out results/benchmarks/fashion-cnn-structured

# The reliability figures: random SIGKILLs of a search and the fuzzers' input counts, written to results/.
bench-reliability: install
	mkdir -p results/reliability
	AUTOPRUNE_KILL_REPORT=results/reliability/kill_resume.json \
	AUTOPRUNE_FUZZ_COUNTS=results/reliability/fuzz_counts.json \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/search/test_reliability.py tests/test_fuzz.py

# Every torchvision classification model and the Hugging Face families through inspect, structured
# pruning, a forward pass, apply + load_pruned and ONNX export: results/zoo/zoo.md and zoo.csv.
zoo: install
	$(BIN)/python -m benchmarks.zoo

lint: install
	$(BIN)/ruff check autoprune tests benchmarks
	$(BIN)/ruff format --check autoprune tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
