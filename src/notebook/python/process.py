def process_weights(sd):
    """TransformerLens's fold_ln + center_writing_weights on a 3.x-keyed state dict (in float64)."""
    sd = {k: v.double().clone() for k, v in sd.items()}
    if cfg.normalization_type is None:
        return sd

    def fold(ln, readers):
        w, b = sd[f"{ln}.w"], sd[f"{ln}.b"]
        for W, B in readers:  # W (..., d_model, X), B (..., X)
            sd[B] = sd[B] + (b[:, None] * sd[W]).sum(-2)
            scaled = sd[W] * w[:, None]
            sd[W] = scaled - scaled.mean(-2, keepdim=True)
        sd[f"{ln}.w"], sd[f"{ln}.b"] = torch.ones_like(w), torch.zeros_like(b)

    # shortformer: W_pos joins ln1's output before W_Q and W_K, so ln1 stays and W_pos is no writer
    shortformer = getattr(cfg, "positional_embedding_type", "standard") == "shortformer"
    writers = ["embed.W_E"] + ([] if shortformer else ["pos_embed.W_pos"])
    for l in range(cfg.n_layers):
        if not shortformer:
            fold(f"blocks.{l}.ln1", [(f"blocks.{l}.attn.W_{x}", f"blocks.{l}.attn.b_{x}") for x in "QKV"])
        writers += [f"blocks.{l}.attn.W_O", f"blocks.{l}.attn.b_O"]
        if not cfg.attn_only:
            fold(f"blocks.{l}.ln2", [(f"blocks.{l}.mlp.W_in", f"blocks.{l}.mlp.b_in")])
            writers += [f"blocks.{l}.mlp.W_out", f"blocks.{l}.mlp.b_out"]
    fold("ln_final", [("unembed.W_U", "unembed.b_U")])
    for k in writers:  # every writer to the residual stream loses its mean over d_model
        sd[k] = sd[k] - sd[k].mean(-1, keepdim=True)
    return sd


processed = process_weights(state_dict)
pmodel = TransformerBridge.boot_native(cfg)
pmodel.load_state_dict(convert_tl_checkpoint({k: v.float() for k, v in processed.items()}, cfg), strict=True)
pmodel.eval()
same = (pmodel(torch.tensor(seq)) - model(torch.tensor(seq))).abs().max().item()
print(f"processed model: largest logit change on the input {same:.2e} (the same function)")
