B, T = ANALYSIS.shape
bi = torch.arange(B)[:, None].expand(B, len(PRED_POSITIONS))
pi = torch.tensor(PRED_POSITIONS)[None, :].expand(B, len(PRED_POSITIONS))
target = torch.tensor(ANALYSIS[:, SCORED])  # (B, P) the correct next tokens
resid = acache["ln_final.hook_in"].double()
scale = ((resid - resid.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt() \
    if cfg.normalization_type else torch.ones_like(resid[..., :1])  # ln_final's scale, frozen
w_u = W_U.T[target]  # (B, P, d_model): the correct logit's unembedding direction


def attribution(x):
    """Mean over (sample, predicted position) of x · W_U[:, correct] / scale; x (B, T, d_model) or (d_model,)."""
    x = x.expand(B, T, x.shape[-1])  # a bias (d_model,) or one row of positions (1, T, d_model)
    return ((x.double()[bi, pi] * w_u).sum(-1) / scale[bi, pi, 0]).mean().item()


parts = {"embed": attribution(acache["hook_embed"])}
if "pos_embed" in TOYFORMER["dla"]:  # standard positions only: shortformer adds W_pos to queries and keys only
    parts["pos_embed"] = attribution(acache["hook_pos_embed"])
for l in range(cfg.n_layers):
    z = acache[f"blocks.{l}.attn.hook_z"].double()  # (B, T, n_heads, d_head), b_V included
    for h in range(cfg.n_heads):
        parts[f"L{l}H{h}"] = attribution(z[:, :, h] @ processed[f"blocks.{l}.attn.W_O"][h])
    if f"L{l} b_O" in TOYFORMER["dla"]:
        parts[f"L{l} b_O"] = attribution(processed[f"blocks.{l}.attn.b_O"])
    if not cfg.attn_only:
        parts[f"MLP{l}"] = attribution(acache[f"blocks.{l}.hook_mlp_out"])
parts["b_U"] = processed["unembed.b_U"][target].mean().item()
fig = px.bar(x=list(parts), y=list(parts.values()), labels=dict(x="component", y="mean correct logit"),
             title="Direct logit attribution")
fig.show()
for name, value in parts.items():
    check(f"DLA {name}", value, TOYFORMER["dla"][name])
check("DLA total (the mean correct logit)", sum(parts.values()), TOYFORMER["dla_logit"])
