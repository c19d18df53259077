#!/usr/bin/env bash
# The GPU benchmark on a real GPU machine (../shared/docs/gpu.md): toyformer's wgpu engine through native
# Vulkan and PyTorch (../shared/bench/pytorch_sort_gpu.py) side by side, in ONE command on that machine.
#
#   bash pkg-config/h100-bench.sh prepare   # here (a machine with cargo, apt and the network):
#                                           #   the Vulkan/GL loader .debs into .gl/, the bench binary into .build/
#   bash pkg-config/h100-bench.sh run       # on the GPU machine (no Rust, no Vulkan loader, no network):
#                                           #   unpacks .gl/, points Vulkan at NVIDIA's ICD, runs everything,
#                                           #   writes the log to ${OUT:-test-output}/h100-bench.log
#
# With the device tool: run(command="bash pkg-config/h100-bench.sh run", carry=[".build", ".gl"]).
# .build/ and .gl/ are git-ignored. Record the figures in BENCHMARKS.md with the date and the device.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prepare() {
  mkdir -p .gl .build /tmp/amd64/partial
  local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    apt-get $o update -q
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  cargo build --release --example bench
  cp target/release/examples/bench .build/bench
  # the PyTorch anchor travels with the binary (the GPU machine may not see ../shared)
  cp ../shared/bench/pytorch_sort_gpu.py .build/ 2>/dev/null || echo "../shared/bench/pytorch_sort_gpu.py not found: run will look for it beside the checkout"
  ls -l .gl .build
}

run() {
  local out=${OUT:-test-output}
  mkdir -p "$out"
  local log="$out/h100-bench.log"
  exec > >(tee "$log") 2>&1
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  local py=""
  for d in .build ../shared/bench shared/bench; do [ -f "$d/pytorch_sort_gpu.py" ] && py="$d/pytorch_sort_gpu.py" && break; done
  echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi missing')"
  local b=.build/bench
  local common=(--backend gpu --warmup 50 --windows 7 --window-steps 200 --json)
  echo "== toyformer sort-ref, batch 256 / 1024 / 4096"
  "$b" --config sort-ref "${common[@]}"
  "$b" --config sort-ref --batch 1024 "${common[@]}"
  "$b" --config sort-ref --batch 4096 --windows 5 --window-steps 50 --warmup 10 --backend gpu --json
  echo "== toyformer perm-4 / perm-5 (batch 256)"
  "$b" --config perm-4 "${common[@]}"
  "$b" --config perm-5 --backend gpu --warmup 5 --windows 5 --window-steps 20 --json
  if [ -n "$py" ]; then
    echo "== PyTorch, same machine, same command ($py)"
    python3 "$py" --variants eager,cudagraph,compile_graph --mode throughput --batch 256 || true
    python3 "$py" --variants cudagraph --mode throughput --batch 1024 || true
    python3 "$py" --variants cudagraph --mode throughput --batch 4096 --windows 5 --window-steps 50 || true
  else
    echo "== pytorch_sort_gpu.py not found beside the checkout: no PyTorch figures"
  fi
  echo "== toyformer sort-ref: steps and time to 99% held-out token accuracy"
  "$b" --config sort-ref --backend gpu --converge --max-steps 10000 --eval-every 100 --json
  if [ -n "$py" ]; then
    python3 "$py" --variants cudagraph --mode converge --seeds 0 || true
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
