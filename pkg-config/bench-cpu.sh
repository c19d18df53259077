#!/usr/bin/env bash
# Side-by-side CPU benchmark: toyformer's CPU engine against PyTorch (../shared/bench/pytorch_sort.py)
# on sort-ref, alternating the two programs in one loop so that both see the same machine.
# Usage: bash pkg-config/bench-cpu.sh [ROUNDS]   (PY=/path/to/python with torch; default /work/venv-bench)
# CONVERGE=1 adds steps and seconds to 99% held-out token accuracy, 1 thread, both programs, after the rounds.
# Set-up for PyTorch: python3 -m venv /work/venv-bench && /work/venv-bench/bin/pip install torch numpy
# Every line printed is one measurement; "others' CPU" says how busy the rest of the machine was.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-3}
PY=${PY:-/work/venv-bench/bin/python}
PT=../shared/bench/pytorch_sort.py
OUT=${OUT:-runs/bench-cpu}
mkdir -p "$OUT"
cargo build --release --example bench --example train >/dev/null
B=target/release/examples/bench
W="--warmup 10 --windows 5 --window-steps 20"

# Trained weights for the "trained" rows (where subnormal floats appear): 3000 steps each.
[ -f "$OUT/sort-trained.safetensors" ] || \
  RAYON_NUM_THREADS=2 target/release/examples/train --task sort --steps 3000 --seed 0 --out "$OUT/sort-trained.safetensors" >/dev/null
[ -f "$OUT/pt-trained.pt" ] || \
  "$PY" "$PT" --impl plain --threads 2 --mode converge --max-steps 3000 --target 2 --eval-every 1000 --save "$OUT/pt-trained.pt" >/dev/null

# One line per PyTorch run, in the same form as toyformer's bench line.
pt() {
  local label=$1
  shift
  "$PY" "$PT" --impl plain --mode throughput "$@" $W | "$PY" pkg-config/pt-line.py "$label"
}

for r in $(seq "$ROUNDS"); do
  for t in 1 2; do
    echo "== round $r, $t thread(s)"
    RAYON_NUM_THREADS=$t $B --backend cpu --config sort-ref $W 2>/dev/null | sed 's/^/toyformer fresh: /'
    pt "pytorch fresh" --threads "$t"
    pt "pytorch fresh flush-denormal" --threads "$t" --flush-denormal
    RAYON_NUM_THREADS=$t $B --backend cpu --config sort-ref $W --load "$OUT/sort-trained.safetensors" 2>/dev/null | sed 's/^/toyformer trained: /'
    pt "pytorch trained" --threads "$t" --load "$OUT/pt-trained.pt"
    pt "pytorch trained flush-denormal" --threads "$t" --load "$OUT/pt-trained.pt" --flush-denormal
  done
done

if [ "${CONVERGE:-0}" = 1 ]; then
  echo "== convergence to 99% held-out token accuracy, 1 thread, eval every 100 steps, no clipping"
  RAYON_NUM_THREADS=1 $B --backend cpu --config sort-ref --converge --max-steps 8000 --eval-every 100 --target 0.99 --json 2>/dev/null \
    | tail -n 1 | sed 's/^/toyformer converge: /'
  "$PY" "$PT" --impl plain --threads 1 --mode converge --max-steps 8000 --eval-every 100 --target 0.99 \
    | sed 's/^/pytorch converge: /'
fi
