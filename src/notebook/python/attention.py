seq = np.array([TOYFORMER["input_tokens"]], dtype=np.int64)
logits, cache = model.run_with_cache(torch.tensor(seq))
correct = (logits[0, PRED_POSITIONS].argmax(-1).numpy() == seq[0, SCORED]).sum()
print("input:", " ".join(VOCAB[t] for t in seq[0]))
check("correct predictions on the input", correct, TOYFORMER["input_correct"], tol=0)
labels = [f"{i}:{VOCAB[t]}" for i, t in enumerate(seq[0])]
for l in range(cfg.n_layers):
    pattern = cache[f"blocks.{l}.attn.hook_pattern"][0].numpy()  # (n_heads, T, T): query, key
    fig = px.imshow(pattern, facet_col=0, color_continuous_scale="Blues", zmin=0, zmax=1,
                    labels=dict(x="key", y="query"), title=f"Layer {l} attention patterns")
    fig.update_xaxes(tickvals=list(range(len(labels))), ticktext=labels)
    fig.update_yaxes(tickvals=list(range(len(labels))), ticktext=labels)
    fig.show()
    for h in range(cfg.n_heads):
        rows = [pattern[h, p, answer_sources(seq[0], p)].sum() for p in PRED_POSITIONS if answer_sources(seq[0], p)]
        check(f"L{l}H{h} attention to the answer on the input", np.mean(rows) if rows else 0.0,
              TOYFORMER["input_answer_attention"][l][h])
