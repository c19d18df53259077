W_E, W_U = processed["embed.W_E"], processed["unembed.W_U"]  # (d_vocab, d_model), (d_model, d_vocab_out)
v0, v1 = VALUE_TOKENS
heads = {(r["layer"], r["head"]): r for r in TOYFORMER["heads"]}
for l in range(cfg.n_layers):
    for h in range(cfg.n_heads):
        W_Q, W_K, W_V, W_O = (processed[f"blocks.{l}.attn.W_{x}"][h] for x in "QKVO")
        if cfg.normalization_type and getattr(cfg, "positional_embedding_type", "standard") == "shortformer":
            g = processed[f"blocks.{l}.ln1.w"][:, None]  # ln1 left unfolded: fold its gain here
            W_Q, W_K, W_V = (W * g - (W * g).mean(0) for W in (W_Q, W_K, W_V))
        qk = W_E @ W_Q @ W_K.T @ W_E.T / math.sqrt(cfg.d_head)  # query token x key token
        ov = (W_E @ W_V @ W_O @ W_U)[v0:v1, v0:v1]  # source token x logit, value tokens
        fig = px.imshow(torch.stack([qk[v0:v1, v0:v1], ov]).numpy(), facet_col=0, color_continuous_scale="RdBu",
                        color_continuous_midpoint=0, title=f"L{l}H{h}: full QK (left), full OV (right)")
        fig.show()
        tf = heads[(l, h)]
        diag = (ov.argmax(-1) == torch.arange(v1 - v0)).double().mean()
        check(f"L{l}H{h} OV diagonal fraction", diag, tf["ov_diagonal_fraction"], tol=1e-6)
        ev = torch.linalg.eigvals(ov)
        check(f"L{l}H{h} OV eigenvalue copying score", ev.real.sum() / ev.abs().sum(), tf["ov_eigen_copying"])
        offsets = (qk[v0:v1, v0:v1].argmax(-1) - torch.arange(v1 - v0)).double()
        check(f"L{l}H{h} QK mean argmax offset", offsets.mean(), tf["qk_mean_offset"], tol=1e-6)
        check(f"L{l}H{h} QK fraction slightly above", ((offsets >= 1) & (offsets <= 3)).double().mean(),
              tf["qk_frac_slightly_above"], tol=1e-6)
