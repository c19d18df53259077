"""Checks toyformer's exports against TransformerLens (TL), in a Python with torch and TL installed.

    python pkg-config/tl-check.py all [--bin target/release/examples/notebook] [--dir DIR] [--reference FILE]
        everything below: families, then the notebooks of the reference sorter and of random models of
        every task and family kind (needs TL 4.x, nbclient, nbformat, plotly)
    python pkg-config/tl-check.py families [--bin ...] [--dir DIR]
        every model family both ways with TL 4.x: our export -> TransformerBridge logits equal ours within
        1e-4 relative; the bridge's state_dict() -> our importer (`notebook --check-bridge`) -> our logits
        equal TL's within 1e-4 relative
    python pkg-config/tl-check.py notebook FILE.ipynb...
        executes each notebook top to bottom (nbclient) and fails if a `check` line says DIFFERS, if a
        cell raises, or if there are no checks
    python pkg-config/tl-check.py FILE.safetensors FILE.json [--task sort|permutations] [--n N] [--samples 2048]
        [--expect-acc ACC --tol 0.01]
        the original check below (TL 4.x TransformerBridge when installed, else 3.x HookedTransformer)

The last form:

The export is what the page's Weights cell downloads (or `examples/train --out`): TL state-dict keys in a
.safetensors file and a config JSON with HookedTransformerConfig field names. This script does what the page
tells a user to do (HookedTransformerConfig(**json), load_state_dict), then checks that nothing but TL's own
buffers is missing, that nothing is unexpected, and that the model does its task on data generated here, not by
toyformer: sort (BOS = max_num, MID = max_num + 1; token accuracy on the sorted half) or permutations ("> " + all
permutations of n distinct characters in itertools order + "."; algorithm accuracy after the first term).
Exits 1 on any failure. Not part of `make test`: TL with PyTorch is a multi-GB install.
"""
import argparse
import itertools
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file

from importlib.metadata import version
import os
import re
import subprocess
import tempfile

TL_MAJOR = int(version("transformer_lens").split(".")[0])


def load_tl(weights, config):
    """What the page's Python lines do: 4.x TransformerBridge (strict), or 3.x HookedTransformer (non-strict:
    our files leave out its mask/IGNORE buffers). Returns (model, number of state-dict tensors, problems)."""
    sd, cfg_json = load_file(weights), json.load(open(config))
    if TL_MAJOR >= 4:
        from transformer_lens import TransformerBridge, TransformerBridgeConfig
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
        cfg = TransformerBridgeConfig(**cfg_json)
        model = TransformerBridge.boot_native(cfg)
        result = model.load_state_dict(convert_tl_checkpoint(sd, cfg), strict=True)
        missing = list(result.missing_keys)
    else:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        model = HookedTransformer(HookedTransformerConfig(**cfg_json))
        result = model.load_state_dict(sd, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith(("IGNORE", "mask"))]
    model.eval()
    problems = [f"missing {missing}"] if missing else []
    problems += [f"unexpected {list(result.unexpected_keys)}"] if result.unexpected_keys else []
    return model, len(model.state_dict()), problems


def run_bin(binary, *args):
    print("$", binary, *args, flush=True)
    return subprocess.run([binary, *args]).returncode == 0


def rel_diff(a, b):
    return (a - b).abs().max().item() / b.abs().max().item()


def families(a):
    """Both directions of the TL 4.x round trip for every family `notebook --families` writes."""
    from safetensors.torch import save_file
    if not run_bin(a.bin, "--families", a.dir):
        return False
    names = sorted(f[:-len(".logits.json")] for f in os.listdir(a.dir) if f.endswith(".logits.json"))
    ok = bool(names)
    for name in names:
        base = os.path.join(a.dir, name)
        model, n, problems = load_tl(base + ".safetensors", base + ".json")
        doc = json.load(open(base + ".logits.json"))
        tokens = torch.tensor(doc["tokens"])
        ours = torch.tensor(doc["logits"], dtype=torch.float64).reshape(doc["shape"])
        with torch.no_grad():
            theirs = model(tokens).double()
        rel = rel_diff(theirs, ours)
        good = rel <= 1e-4 and not problems
        ok &= good
        print(f"toyformer -> TL {version('transformer_lens')} {name}: {n} tensors loaded strictly{' ' + str(problems) if problems else ''}, "
              f"max |Δlogit| {(theirs - ours).abs().max().item():.3e}, relative {rel:.3e} {'ok' if good else 'FAIL'}")
        # The other way: what TL 4.x saves, with the config in the metadata as our lines suggest.
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(sd, base + ".bridge.safetensors", metadata={"tl_config": json.dumps(json.load(open(base + ".json")))})
        json.dump({"tokens": doc["tokens"], "logits": theirs.flatten().tolist()}, open(base + ".bridge_logits.json", "w"))
    return run_bin(a.bin, "--check-bridge", a.dir) and ok


CHECK = re.compile(r"^check (.+): notebook (\S+) toyformer (\S+) tol (\S+) (ok|DIFFERS)$")


def run_notebook(path):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "an exported notebook has no outputs"
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path) or "."}}).execute()
    lines = [l for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stdout" for l in o["text"].splitlines()]
    checks = [m.groups() for m in map(CHECK.match, lines) if m]
    ok = bool(checks)
    print(f"{path}: executed {len(nb.cells)} cells, {len(checks)} checks")
    for name, mine, theirs, tol, verdict in checks:
        good = verdict == "ok" and abs(float(mine) - float(theirs)) <= float(tol)
        ok &= good
        print(f"  {name}: notebook {mine} toyformer {theirs} (tol {tol}) {'ok' if good else 'FAIL'}")
    return ok


def notebooks_all(a):
    """Notebooks of the reference sorter and of random models of every task and family kind."""
    ok = True
    cases = [("reference-sorter", ["--model", a.reference, "--task", "sort", "--input", "42 7 19 3 33 25 11 48 0 36"])]
    for name in ["mlp_gelu_new_ln_2l2h_frozen", "attn_ln_2l2h_odd_heads", "mlp_solu_ln_1l1h"]:
        cases.append((name, ["--model", os.path.join(a.dir, name + ".safetensors"), "--beside"]))
    # The other tasks' generators, on random models of their sizes (accuracy near chance: the checks still apply).
    cases.append(("permutations", ["--model", "random", "--task", "permutations", "--n", "3", "--n-layers", "2",
                                   "--n-heads", "2", "--d-model", "32", "--d-head", "16", "--d-mlp", "64", "--norm", "LN"]))
    cases.append(("apply-perm", ["--model", "random", "--task", "apply-perm", "--k", "4", "--max-int", "12",
                                 "--n-heads", "3", "--d-model", "24", "--d-head", "8"]))
    for name, args in cases:
        out = os.path.join(a.dir, f"nb-{name}.ipynb")
        ok &= run_bin(a.bin, *args, "--out", out) and run_notebook(out)
    return ok


def main_sub():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["all", "families", "notebook"])
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--bin", default="target/release/examples/notebook")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--reference", default="../shared/reference-models/sort_fixed_len_list_model.safetensors")
    a = ap.parse_args()
    a.dir = a.dir or tempfile.mkdtemp(prefix="tl-check-")
    import platform
    print(f"python {platform.python_version()}, torch {torch.__version__}, transformer_lens {version('transformer_lens')}, "
          f"numpy {np.__version__}", flush=True)
    ok = True
    if a.cmd == "notebook":
        for nb in a.notebooks:
            ok &= run_notebook(nb)
    if a.cmd in ("all", "families"):
        ok &= families(a)
    if a.cmd == "all":
        ok &= notebooks_all(a)
    print("ALL OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("all", "families", "notebook"):
        return main_sub()
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("config")
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--task", choices=["sort", "permutations"], default="sort")
    ap.add_argument("--n", type=int, default=None, help="list length (sort, default 10) or characters (permutations, default 4)")
    ap.add_argument("--expect-acc", type=float, default=None, help="toyformer's own held-out token accuracy")
    ap.add_argument("--tol", type=float, default=0.01)
    a = ap.parse_args()

    model, n, problems = load_tl(a.weights, a.config)
    cfg = model.cfg
    ok = True
    if problems:
        print(f"FAIL: {problems}")
        ok = False
    else:
        print(f"loaded into TransformerLens {version('transformer_lens')}: {n} tensors, nothing missing "
              f"but TL buffers, nothing unexpected")

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
