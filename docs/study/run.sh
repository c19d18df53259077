#!/usr/bin/env bash
# Every command behind docs/FINDINGS.md, in order; each writes its output to docs/study/NAME.txt.
# Run from the repository root:  bash docs/study/run.sh [NAME ...]   (no names: all of them)
# Training is single-threaded and deterministic (counter-based data, one-owner kernels), so the
# numbers repeat exactly on any x86-64 machine; only the wall time depends on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --example study_perm --example sweep --example eval
S=./target/release/examples/study_perm
W=./target/release/examples/sweep
export RAYON_NUM_THREADS=1
mkdir -p docs/study sweeps/out runs

declare -A CMD=(
  [floor]="$S --what floor"
  # where the copy steps attend, n = 3, 4, 5, one and two layers (the seed's model: d_model 128, d_head 64, LN)
  [attention_n3_1L]="$S --what attention --n 3 --steps 1500 --batch 32 --samples 64 --complete 50"
  [attention_n3_2L]="$S --what attention --n 3 --n-layers 2 --steps 1500 --batch 32 --samples 64 --complete 50"
  [attention_n4_1L]="$S --what attention --n 4 --steps 1500 --batch 32 --samples 32 --complete 20 --save runs/p4_1L.safetensors"
  [attention_n4_2L]="$S --what attention --n 4 --n-layers 2 --steps 1500 --batch 32 --samples 32 --complete 20 --save runs/p4_2L.safetensors"
  [attention_n5_1L]="$S --what attention --n 5 --steps 2000 --batch 8 --samples 16 --complete 5 --save runs/p5_1L.safetensors"
  [attention_n5_2L]="$S --what attention --n 5 --n-layers 2 --steps 2000 --batch 8 --samples 16 --complete 5 --save runs/p5_2L.safetensors"
  [attention_n4_holdout]="$S --what attention --n 4 --holdout 0.9 --steps 1500 --batch 32 --samples 32 --complete 20"
  # the seed's training settings: batch 4, AdamW betas (0.9, 0.99), ReduceLROnPlateau(patience=100) stepped per batch
  [spikes_seed]="$S --what spikes --n 4 --batch 4 --steps 3100 --beta2 0.99 --schedule plateau --patience 100 --csv sweeps/out/spikes_seed.csv"
  [spikes_seed_constant]="$S --what spikes --n 4 --batch 4 --steps 3100 --beta2 0.99 --inspect 1415,2376 --csv sweeps/out/spikes_seed_constant.csv"
  [spikes_plateau10]="$S --what spikes --n 4 --batch 4 --steps 3100 --beta2 0.99 --schedule plateau --patience 10 --csv sweeps/out/spikes_plateau10.csv"
  [spikes_batch32]="$S --what spikes --n 4 --batch 32 --steps 3100 --csv sweeps/out/spikes_batch32.csv"
  # the assumption sweeps
  [sweep_a1_layers]="$W --grid sweeps/a1_layers.json --threads 1 --out sweeps/out/a1_layers.jsonl --resume --links"
  [sweep_a1_width]="$W --grid sweeps/a1_width.json --threads 1 --out sweeps/out/a1_width.jsonl --resume --links"
  [sweep_a2_mlp_ln]="$W --grid sweeps/a2_mlp_ln.json --threads 1 --out sweeps/out/a2_mlp_ln.jsonl --resume --links"
  [sweep_a5_holdout]="$W --grid sweeps/a5_holdout.json --threads 1 --out sweeps/out/a5_holdout.jsonl --resume --links"
  [n6_refused]="$S --what attention --n 6"
  # when the copy circuit forms: the first steps of the attention runs above, measured every few steps
  [formation_n3_1L]="$S --what formation --n 3 --steps 300 --batch 32 --every 5 --samples 32"
  [formation_n4_1L]="$S --what formation --n 4 --steps 300 --batch 32 --every 5 --samples 32"
  [formation_n4_2L]="$S --what formation --n 4 --n-layers 2 --steps 300 --batch 32 --every 5 --samples 32"
  [formation_n5_1L]="$S --what formation --n 5 --steps 400 --batch 8 --every 10 --samples 8"
  # more heads (d_head 32 each), and more seeds for n = 5
  [sweep_a1_heads]="$W --grid sweeps/a1_heads.json --threads 2 --out sweeps/out/a1_heads.jsonl --resume --links"
  [attention_n4_2H]="$S --what attention --n 4 --n-heads 2 --d-head 32 --steps 1000 --batch 32 --samples 32 --complete 5"
  [sweep_n5_seeds]="$W --grid sweeps/n5_seeds.json --threads 2 --out sweeps/out/n5_seeds.jsonl --resume --links"
  # the page link of attention_n5_2L (it ran before the study printed links; no training here)
  [link_n5_2L]="$S --what link --n 5 --n-layers 2 --steps 2000 --batch 8"
  # per-position accuracy of the n = 5 one-layer model saved by attention_n5_1L (its only errors)
  [eval_n5_1L]="./target/release/examples/eval --model runs/p5_1L.safetensors --task permutations --n 5 --samples 512 --json"
)
ORDER=(floor attention_n3_1L attention_n3_2L attention_n4_1L attention_n4_2L attention_n5_1L attention_n5_2L
  attention_n4_holdout spikes_seed spikes_seed_constant spikes_plateau10 spikes_batch32
  sweep_a1_layers sweep_a1_width sweep_a2_mlp_ln sweep_a5_holdout n6_refused eval_n5_1L link_n5_2L
  formation_n3_1L formation_n4_1L formation_n4_2L formation_n5_1L sweep_a1_heads attention_n4_2H sweep_n5_seeds)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
for name in "${names[@]}"; do
  cmd=${CMD[$name]:?unknown name $name}
  echo "== $name: $cmd" >&2
  { echo "\$ ${cmd/#.\/target\/release\/examples\/study_perm/cargo run --release --example study_perm --}"; $cmd 2>&1 || true; } \
    | sed -e 's|^\$ ./target/release/examples/\([a-z_]*\)|$ cargo run --release --example \1 --|' > "docs/study/$name.txt"
done
