"""Loads a toyformer export into TransformerLens and measures it on the sort task, independently.

    python pkg-config/tl-check.py FILE.safetensors FILE.json [--task sort|permutations] [--n N] [--samples 2048]
        [--expect-acc ACC --tol 0.01]

The export is what the page's Weights cell downloads (or `examples/train --out`): TL state-dict keys in a
.safetensors file and a config JSON with HookedTransformerConfig field names. This script does what the page
tells a user to do (HookedTransformerConfig(**json), load_state_dict), then checks that nothing but TL's own
buffers is missing, that nothing is unexpected, and that the model does its task on data generated here, not by
toyformer: sort (BOS = max_num, MID = max_num + 1; token accuracy on the sorted half) or permutations ("> " + all
permutations of n distinct characters in itertools order + "."; algorithm accuracy after the first term).
Exits 1 on any failure. Needs a Python with torch and transformer_lens 3.x, which still has HookedTransformer
(TransformerLens 4 removed it). Not part of `make test`: a multi-GB install.
"""
import argparse
import itertools
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("config")
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--task", choices=["sort", "permutations"], default="sort")
    ap.add_argument("--n", type=int, default=None, help="list length (sort, default 10) or characters (permutations, default 4)")
    ap.add_argument("--expect-acc", type=float, default=None, help="toyformer's own held-out token accuracy")
    ap.add_argument("--tol", type=float, default=0.01)
    a = ap.parse_args()

    cfg = HookedTransformerConfig(**json.load(open(a.config)))
    model = HookedTransformer(cfg)
    result = model.load_state_dict(load_file(a.weights), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(("IGNORE", "mask"))]
    ok = True
    if missing or result.unexpected_keys:
        print(f"FAIL: missing {missing}, unexpected {list(result.unexpected_keys)}")
        ok = False
    else:
        print(f"loaded into TransformerLens: {len(model.state_dict())} tensors, only TL buffers missing "
              f"({len(result.missing_keys)}), nothing unexpected")

    rng = np.random.default_rng(12345)
    if a.task == "sort":
        n = a.n or 10
        max_num = cfg.d_vocab_out
        x = rng.integers(0, max_num, size=(a.samples, n))
        rows = np.concatenate([np.full((a.samples, 1), max_num), x, np.full((a.samples, 1), max_num + 1), np.sort(x, axis=1)], axis=1)
        first_scored = n + 2  # the sorted list (tokens n+2 .. 2n+1), predicted from positions n+1 .. 2n
    else:
        n = a.n or 4
        chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        vocab = {c: i for i, c in enumerate("> ." + chars)}
        rows = []
        for _ in range(a.samples):
            combo = sorted(rng.choice(len(chars), size=n, replace=False))
            text = "> " + " ".join("".join(chars[i] for i in p) for p in itertools.permutations(combo)) + "."
            rows.append([vocab[c] for c in text])
        rows = np.array(rows)
        first_scored = 2 + n  # after "> " and the first term: the only part a model can predict
    tokens = torch.tensor(rows, dtype=torch.long)
    with torch.no_grad():
        logits = model(tokens)  # (B, T, V)
    pred = logits[:, first_scored - 1: -1, :]
    target = tokens[:, first_scored:]
    loss = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1)).item()
    acc = (pred.argmax(-1) == target).float().mean().item()
    seq = (pred.argmax(-1) == target).all(-1).float().mean().item()
    what = "token" if a.task == "sort" else "algorithm"
    print(f"TransformerLens on {a.samples} fresh {a.task} sequences (numpy): loss {loss:.4f} {what} acc {acc:.4f} seq acc {seq:.4f}")
    if a.expect_acc is not None:
        if abs(acc - a.expect_acc) > a.tol:
            print(f"FAIL: {what} accuracy {acc:.4f} differs from toyformer's {a.expect_acc} by more than {a.tol}")
            ok = False
        else:
            print(f"matches toyformer's held-out {what} accuracy {a.expect_acc} within {a.tol}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
