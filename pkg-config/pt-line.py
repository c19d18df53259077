"""Reads pytorch_sort.py's JSON (stdin) and prints one line in the form of toyformer's bench line."""
import json
import statistics
import sys

label = sys.argv[1] if len(sys.argv) > 1 else "pytorch"
r = json.load(sys.stdin)
w = r["train_steps_per_s"]
o = w["others_cpu_frac"]
ms = sorted(1000 / x for x in w["windows"])
print(f"{label}: ms/step min {ms[0]:.2f} median {statistics.median(ms):.2f} max {ms[-1]:.2f}"
      f" | threads {r['threads']} | others' CPU median {statistics.median(o):.2f} max {max(o):.2f}"
      f" | torch {r['torch']} ({r['cpu_capability']})")
