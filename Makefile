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

.PHONY: test lint test-native test-ray test-js test-browser wasm wasm-relaxed vendor site serve serve-dev bench bench-browser \
        clean distclean

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
	@$(MAKE) --no-print-directory wasm vendor site
	# the sweep cell's test compares with the command line's run of the same grid
	$(CARGO) build --release --example sweep
	@echo "== browser tests: node --test tests/browser/ =="
	@mkdir -p test-output
	node --test tests/browser/
endif

## wasm: build the library for wasm32 twice and generate JS bindings: www/pkg (simd128) and
## www/pkg-relaxed (simd128 + relaxed SIMD: fused multiply-add in the CPU engine's hot loops), which
## the page's workers load where the browser supports it (www/js/wasm-pick.js). No wasm-opt. Then
## www/js/task-rows.js (the task menu's rows, not in git) from the registry through the wasm build.
wasm:
	@bash $(DEPS) wasm
	$(CARGO) build --lib --release --target $(WASM_TARGET)
	wasm-bindgen --target web --out-dir www/pkg $(WASM_FILE)
	@ls -l www/pkg/*.wasm
	node pkg-config/task-rows.mjs
	@$(MAKE) --no-print-directory wasm-relaxed

# A separate target directory, so that the two builds' different flags do not rebuild each other.
RELAXED_DIR := $(TARGET_DIR)/relaxed
wasm-relaxed:
	RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" $(CARGO) build --lib --release --target $(WASM_TARGET) \
	   --target-dir $(RELAXED_DIR)
	wasm-bindgen --target web --out-dir www/pkg-relaxed $(RELAXED_DIR)/$(WASM_TARGET)/release/toyformer.wasm
	@ls -l www/pkg-relaxed/*.wasm

## vendor: copy the plotting library (uPlot, pinned in pkg-config/package.json) into www/vendor/.
vendor:
	@bash $(DEPS) npm
	@mkdir -p www/vendor/uplot
	cp pkg-config/node_modules/uplot/dist/uPlot.esm.js pkg-config/node_modules/uplot/dist/uPlot.min.css \
	   pkg-config/node_modules/uplot/LICENSE www/vendor/uplot/

## site: a self-contained folder any static host can serve (SITE=... to change): the page, both
## wasm builds, the vendored plot library, and a service worker (coi-sw.js, registered by coi.js)
## that adds the cross-origin isolation headers where the host sends none. See README, "Publishing".
SITE ?= site
site: wasm vendor
	rm -rf $(SITE)
	mkdir -p $(SITE)/pkg $(SITE)/pkg-relaxed
	cp -r www/index.html www/style.css www/interp.css www/coi.js www/coi-sw.js www/js www/vendor $(SITE)/
	cp www/pkg/toyformer.js www/pkg/toyformer_bg.wasm $(SITE)/pkg/
	cp www/pkg-relaxed/toyformer.js www/pkg-relaxed/toyformer_bg.wasm $(SITE)/pkg-relaxed/
	sed -i 's|<script type="module" src="js/main.js"></script>|<script src="coi.js"></script>\n  &|' $(SITE)/index.html
	grep -q 'src="coi.js"' $(SITE)/index.html
	@du -sh $(SITE)

## serve: build the site folder and serve it at http://127.0.0.1:8000 with the isolation headers
## set (PORT=... to change). serve-dev: serve www/ itself, no headers (what the browser tests use).
serve: site
	ROOT=$(SITE) ISOLATE=1 python3 pkg-config/serve.py

serve-dev: wasm vendor
	python3 pkg-config/serve.py

## bench: CPU benchmark of the sort reference config (BENCH_ARGS=... to change).
bench:
	$(CARGO) run --release --example bench -- $(BENCH_ARGS)

## bench-browser: steps/s of sort-ref in headless Chromium on the CPU (wasm, both builds) with 1 and 2
## workers, then the native engine with the same windows, plain and data-parallel (BENCH_BROWSER_ARGS=...;
## add --backends cpu,webgpu for WebGPU too).
BENCH_BROWSER_ARGS ?= --config sort-ref --backends cpu --workers 1,2 --pkgs pkg,pkg-relaxed --steps 20 \
	--windows 9 --native $(TARGET_DIR)/release/examples/bench
bench-browser: wasm vendor
	$(CARGO) build --release --example bench
	node pkg-config/bench-browser.mjs $(BENCH_BROWSER_ARGS)

## bench-converge-browser: wall time and steps to 99% token accuracy on sort-ref through the page, with 1
## and 2 CPU workers and the default, auto (0) (ISOLATE=1: the page cross-origin isolated,
## SharedArrayBuffers). A few minutes.
.PHONY: bench-converge-browser
bench-converge-browser: wasm vendor
	node pkg-config/bench-converge-browser.mjs --workers 1,2,0

## bench-auto-browser: what `workers` auto measures and keeps (pool-pick.js) for sort models of
## d_model 8 to 128, batch 256, in the isolated page: where a second worker starts to pay.
.PHONY: bench-auto-browser
bench-auto-browser: wasm vendor
	ISOLATE=1 node pkg-config/bench-auto-browser.mjs

clean:
	$(CARGO) clean
	rm -rf www/pkg www/pkg-relaxed www/vendor www/js/task-rows.js test-output $(SITE)

## distclean: clean, and also remove installed npm packages.
distclean: clean
	rm -rf pkg-config/node_modules
