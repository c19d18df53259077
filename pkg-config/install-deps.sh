#!/usr/bin/env bash
# Install what toyformer's build and tests need, skipping whatever is already there.
# Used by .ci/run and by the Makefile, so a fresh Debian 12 machine needs only `make test` / `make serve`.
#
#   pkg-config/install-deps.sh [MODE]
#     all   (default) apt packages + wasm toolchain + rustfmt/clippy + npm packages   (make test, .ci/run)
#     wasm  rustup wasm32 target + wasm-bindgen-cli, no apt           (make wasm)
#     npm   npm packages in pkg-config/ only (never a browser)        (make vendor)
#     apt   Debian packages only (needs root or sudo)
#
# Every step checks first and returns quickly when its tool is already installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1   # playwright-core must never fetch a browser: we use Debian's.

say() { printf '[install-deps] %s\n' "$*"; }

# Run a step and report how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  say "$name: done in $((SECONDS - start)) s"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root (or sudo) for: $*"; return 1
  fi
}

deps_apt() {
  local missing=() p
  for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then
    say "apt: $APT_PACKAGES already installed"
    return 0
  fi
  say "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q || { sleep 5; as_root apt-get update -q; }
  # A fresh machine can fail partway ("failed to read archive"): repair with -f and retry.
  local try
  for try in 1 2 3 4; do
    if as_root apt-get install -y -q "${missing[@]}"; then return 0; fi
    [ "$try" = 4 ] && break
    say "apt: install failed (try $try), running apt-get install -y -f and retrying"
    as_root apt-get install -y -q -f || true
    sleep 3
  done
  say "apt: could not install ${missing[*]}"
  return 1
}

deps_wasm_target() {
  if rustup target list --installed | grep -qx "$WASM_TARGET"; then
    say "rustup: $WASM_TARGET already installed"
  else
    rustup target add "$WASM_TARGET"
  fi
}

# rustfmt and clippy for `make lint` (a minimal rustup profile has neither).
deps_lint() {
  if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
    say "rustup: rustfmt and clippy already installed"
  else
    rustup component add rustfmt clippy
  fi
}

deps_wasm_bindgen() {
  local want="wasm-bindgen $WASM_BINDGEN_VERSION" have
  have=$(wasm-bindgen --version 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    say "wasm-bindgen-cli: $WASM_BINDGEN_VERSION already installed"
    return 0
  fi
  # The CLI must match the crate in Cargo.lock exactly, or the generated JS glue is refused.
  local locked
  locked=$(grep -A1 '^name = "wasm-bindgen"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p' || true)
  if [ -n "$locked" ] && [ "$locked" != "$WASM_BINDGEN_VERSION" ]; then
    say "Cargo.lock has wasm-bindgen $locked but pkg-config/versions.env pins $WASM_BINDGEN_VERSION: make them equal"
    return 1
  fi
  say "wasm-bindgen-cli: installing $WASM_BINDGEN_VERSION (found: ${have:-none}); this builds from source and takes minutes"
  # No --locked: the registry mirror lags and the locked set names crate versions it may not have.
  # Build in cargo's own temporary directory, not the project's target dir.
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  have=$(wasm-bindgen --version 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    say "after install, 'wasm-bindgen --version' says '${have:-nothing}' (is another wasm-bindgen earlier in PATH?)"
    return 1
  fi
}

deps_npm() {
  local lock="$here/package-lock.json" stamp="$here/node_modules/.toyformer-stamp" sum
  sum=$(cat "$here/package.json" "$lock" 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    say "npm: pkg-config/node_modules up to date"
    return 0
  fi
  say "npm: installing pkg-config/ devDependencies"
  if [ -f "$lock" ]; then
    (cd "$here" && npm ci --no-audit --no-fund)
  else
    (cd "$here" && npm install --no-audit --no-fund)
    sum=$(cat "$here/package.json" "$lock" | sha256sum | cut -d' ' -f1)
  fi
  echo "$sum" >"$stamp"
}

mode=${1:-all}
case "$mode" in
  all)
    timed apt deps_apt
    timed "wasm32 target" deps_wasm_target
    timed "rustfmt, clippy" deps_lint
    timed wasm-bindgen-cli deps_wasm_bindgen
    timed npm deps_npm
    ;;
  wasm)
    timed "wasm32 target" deps_wasm_target
    timed wasm-bindgen-cli deps_wasm_bindgen
    ;;
  npm) timed npm deps_npm ;;
  apt) timed apt deps_apt ;;
  *) echo "usage: $0 [all|wasm|npm|apt]" >&2; exit 2 ;;
esac
