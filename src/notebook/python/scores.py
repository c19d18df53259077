_, acache = pmodel.run_with_cache(torch.tensor(ANALYSIS))
prompt_len = PROMPT_LEN
for l in range(cfg.n_layers):
    pattern = acache[f"blocks.{l}.attn.hook_pattern"].double()  # (B, n_heads, T, T)
    for h in range(cfg.n_heads):
        answer, prompt = [], []
        for b, tokens in enumerate(ANALYSIS):
            for p in PRED_POSITIONS:
                prompt.append(pattern[b, h, p, :prompt_len].sum().item())
                src = answer_sources(tokens, p)
                if src:
                    answer.append(pattern[b, h, p, src].sum().item())
        tf = heads[(l, h)]
        check(f"L{l}H{h} attention to the answer", np.mean(answer) if answer else 0.0, tf["attention_to_answer"])
        check(f"L{l}H{h} attention to the prompt", np.mean(prompt), tf["attention_to_prompt"])
