# pip install "transformer_lens>=4" plotly   (TransformerLens 4.x: TransformerBridge)
import base64
import json
import math
from importlib.metadata import version

import numpy as np
import plotly.express as px
import torch
from safetensors.torch import load as load_safetensors
from transformer_lens import TransformerBridge, TransformerBridgeConfig
from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

torch.set_grad_enabled(False)
print(f"transformer_lens {version('transformer_lens')}, torch {torch.__version__}")


def check(name, notebook, toyformer, tol=None):
    """Prints a number computed here next to the one the page showed; by default they must agree
    within 1e-3, relative for numbers above 1 (float32 arithmetic in a different order)."""
    notebook, toyformer = float(notebook), float(toyformer)
    tol = 1e-3 * max(1.0, abs(toyformer)) if tol is None else tol
    ok = abs(notebook - toyformer) <= tol
    print(f"check {name}: notebook {notebook:.6f} toyformer {toyformer:.6f} tol {tol:g} {'ok' if ok else 'DIFFERS'}")
