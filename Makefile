# One command path: README, CI and developers run these targets.
#   make run    – install (first time) and serve the shipped default model on http://127.0.0.1:8000
#   make test   – install (first time) and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# PyTorch for the [train] extra. The CPU build keeps the install small where the index has one.
TORCH  ?= torch==2.13.0
# The TensorRT test pass: TensorRT-RTX builds engines without a GPU (real wheels on PyPI), kept
# out of the main venv so that the first pass tests the default install without TensorRT.
TRT_RTX  ?= tensorrt-rtx-cu12==1.7.1.116
CUDA_PY  ?= cuda-bindings>=12.9.1,<13
TRT_DIR  := $(VENV)/tensorrt-rtx
# A real Triton Inference Server for the triton backend's tests: the tritonserver binary (with
# Triton's Python backend) that the nvidia-pytriton wheel carries; only the binary is used.
TRITON     ?= nvidia-pytriton==0.7.0
TRITON_DIR := $(VENV)/tritonserver
# The kiosk's browser tests drive Debian's chromium (no browser download: Playwright uses it).
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Set-up steps print one line each; their output goes to var/setup/*.log, shown only on failure.
QUIETLY  := scripts/quietly
RESULTS  := var/test-results

.PHONY: run test lint bench install install-dev clean browser

$(BIN)/python:
	@$(QUIETLY) venv sh -c '$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q --upgrade pip'

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(QUIETLY) install $(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@$(QUIETLY) install-dev $(BIN)/pip install -q -e ".[dev]" "$(TORCH)"
	@touch $@ $(VENV)/.installed

$(TRT_DIR)/.installed: | $(BIN)/python
	@$(QUIETLY) tensorrt-rtx $(BIN)/pip install -q --target $(TRT_DIR) "$(TRT_RTX)" "$(CUDA_PY)"
	@touch $@

$(TRITON_DIR)/.installed: | $(BIN)/python
	@if [ "$$(uname -sm)" = "Linux x86_64" ]; then \
		$(QUIETLY) tritonserver $(BIN)/pip install -q --no-deps --target $(TRITON_DIR) "$(TRITON)"; \
	else echo "tritonserver wheels are Linux x86_64 only: the Triton tests will be skipped"; \
		mkdir -p $(TRITON_DIR); fi
	@touch $@

browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(QUIETLY) chromium sh -c '$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium'; \
	else echo "no $(CHROMIUM) and no apt-get: the browser tests will be skipped"; fi

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(BIN)/authentiq serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# Lint, then three pytest passes; every pass runs even if one fails, then one screen sums them up
# (counts, skip reasons, durations; scripts/test_summary.py) and the exit status says if any failed.
test: $(VENV)/.installed-dev $(TRT_DIR)/.installed $(TRITON_DIR)/.installed browser
	$(BIN)/ruff check authentiq tests benchmarks scripts
	$(BIN)/mypy authentiq
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	@rm -rf $(RESULTS); status=0; \
	echo "== pass 1 of 3: SQLite"; \
	$(BIN)/pytest --junitxml=$(RESULTS)/1-sqlite.xml || status=1; \
	echo "== pass 2 of 3: PostgreSQL"; \
	AUTHENTIQ_TEST_DATABASE=postgres $(BIN)/pytest --junitxml=$(RESULTS)/2-postgres.xml || status=1; \
	echo "== pass 3 of 3: TensorRT-RTX (engine build, backend selection)"; \
	PYTHONPATH=$(TRT_DIR) AUTHENTIQ_TEST_TENSORRT=required $(BIN)/pytest \
		--junitxml=$(RESULTS)/3-tensorrt.xml tests/inference/test_engine_build.py tests/inference/test_backend_select.py \
		|| status=1; \
	$(BIN)/python scripts/test_summary.py $(RESULTS); exit $$status

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.preprocess
	$(BIN)/python -m benchmarks.model
	$(BIN)/python -m benchmarks.inspection
	$(BIN)/python -m benchmarks.load
	$(BIN)/python -m benchmarks.backends
	$(BIN)/python -m benchmarks.references
	$(BIN)/python -m benchmarks.heatmap

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
