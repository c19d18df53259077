cfg = TransformerBridgeConfig(**CONFIG)
model = TransformerBridge.boot_native(cfg)
# The file holds TransformerLens 3.x keys (blocks.0.attn.W_Q, ...): TL 4.x converts them itself.
# strict=True: every tensor must be there, biases included.
model.load_state_dict(convert_tl_checkpoint(state_dict, cfg), strict=True)
model.eval()
print(f"{cfg.n_layers} layer(s), {cfg.n_heads} head(s), d_model {cfg.d_model}, d_head {cfg.d_head}, "
      f"{sum(p.numel() for p in model.parameters())} parameters")
