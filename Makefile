# toyformer: build, test and serve. Each target installs what it is missing (pkg-config/install-deps.sh),
# so `make serve` and `make test` work on a fresh Debian 12 machine (apt needs root or sudo).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
WASM_FILE := $(TARGET_DIR)/$(WASM_TARGET)/release/toyformer.wasm
DEPS := pkg-config/install-deps.sh
# Browser test files, using node's own test-file name patterns (helpers beside them are not tests).
BROWSER_TESTS := $(shell find tests/browser -type f \( -name '*.test.*js' -o -name '*-test.*js' \
                   -o -name '*_test.*js' -o -name 'test-*.*js' \) 2>/dev/null)
BENCH_ARGS ?= --backend cpu --config sort-ref

export PATH := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

RAY_VENV ?= .venv-ray
RAY_REQS := pkg-config/requirements-ray.txt

.PHONY: test lint test-native test-ray test-js test-browser wasm vendor serve bench bench-browser clean distclean

## test: lint, native tests (release), wasm32 build + bindings, then the browser tests if any exist.
test:
	@bash $(DEPS) all
	@$(MAKE) --no-print-directory lint
	@echo "== native tests: cargo test --release --lib --tests, then --doc =="
	@$(MAKE) --no-print-directory test-native
	@$(MAKE) --no-print-directory test-ray
	@echo "== wasm32 library build =="
	$(CARGO) build --lib --release --target $(WASM_TARGET)
	@$(MAKE) --no-print-directory wasm
	@$(MAKE) --no-print-directory test-js
	@$(MAKE) --no-print-directory test-browser

## lint: rustfmt (default settings) and clippy with warnings as errors, native (every target:
## lib, tests, examples) and wasm32 (lib). Runs first in `make test`: fast to fail.
lint:
	@echo "== lint: cargo fmt --check, cargo clippy (native, wasm32) =="
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release --lib --target $(WASM_TARGET) -- -D warnings

## test-native: unit and integration tests, then doc tests. Examples are not linked here (`lint`'s clippy
## --all-targets type-checks them; test-browser builds the one it runs, sweep): building all seven took
## 48 s of release codegen and linking on the 2-core machine.
test-native:
	$(CARGO) test --release --lib --tests
	$(CARGO) test --release --doc

## test-ray: pkg-config/ray_sweep.py on a local Ray cluster (127.0.0.1) that tests/ray/ starts and stops.
## Ray (pinned in $(RAY_REQS)) goes into the virtual environment $(RAY_VENV)/, created once and again
## when that file changes (RAY_VENV=DIR keeps it elsewhere, e.g. outside a fresh clone); `timeout` bounds
## the whole test (the test stops its cluster on SIGTERM too).
test-ray: $(RAY_VENV)/.installed
	$(CARGO) build --release --example sweep
	@echo "== Ray sweep test: tests/ray/ =="
	SWEEP_BIN=$(TARGET_DIR)/release/examples/sweep timeout 900 $(RAY_VENV)/bin/python -m unittest discover -s tests/ray -v

$(RAY_VENV)/.installed: $(RAY_REQS)
	@bash $(DEPS) apt
	rm -rf $(RAY_VENV)
	python3 -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(RAY_REQS)
	touch $@

## test-js: the page's pure modules in node (link codec property test; no browser needed).
test-js:
	node --test tests/js/

test-browser:
ifeq ($(strip $(BROWSER_TESTS)),)
	@echo "== browser tests: skipped, no test files in tests/browser/ yet =="
else
	@bash $(DEPS) all
	@$(MAKE) --no-print-directory wasm vendor
	# the sweep cell's test compares with the command line's run of the same grid
	$(CARGO) build --release --example sweep
	@echo "== browser tests: node --test tests/browser/ =="
	@mkdir -p test-output
	node --test tests/browser/
endif

## wasm: build the library for wasm32 and generate JS bindings into www/pkg (no wasm-opt).
wasm:
	@bash $(DEPS) wasm
	$(CARGO) build --lib --release --target $(WASM_TARGET)
	wasm-bindgen --target web --out-dir www/pkg $(WASM_FILE)
	@ls -l www/pkg/*.wasm

## vendor: copy the plotting library (uPlot, pinned in pkg-config/package.json) into www/vendor/.
vendor:
	@bash $(DEPS) npm
	@mkdir -p www/vendor/uplot
	cp pkg-config/node_modules/uplot/dist/uPlot.esm.js pkg-config/node_modules/uplot/dist/uPlot.min.css \
	   pkg-config/node_modules/uplot/LICENSE www/vendor/uplot/

## serve: build, then serve www/ at http://127.0.0.1:8000 (PORT=... to change).
serve: wasm vendor
	python3 pkg-config/serve.py

## bench: CPU benchmark of the sort reference config (BENCH_ARGS=... to change).
bench:
	$(CARGO) run --release --example bench -- $(BENCH_ARGS)

## bench-browser: steps/s of sort-ref in headless Chromium, CPU (wasm) and WebGPU (BENCH_BROWSER_ARGS=...).
bench-browser: wasm vendor
	node pkg-config/bench-browser.mjs $(BENCH_BROWSER_ARGS)

clean:
	$(CARGO) clean
	rm -rf www/pkg www/vendor test-output

## distclean: clean, and also remove installed npm packages.
distclean: clean
	rm -rf pkg-config/node_modules
