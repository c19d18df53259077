def accuracy(tokens, want):
    """Mean over sequences of the fraction of predicted positions whose argmax is the target (want, (B, P))."""
    logits = model(torch.tensor(tokens, dtype=torch.long))  # (B, T, d_vocab_out)
    pred = logits[:, PRED_POSITIONS, :].argmax(-1).numpy()
    return (pred == want).mean()


ANALYSIS = np.array(TOYFORMER["analysis_tokens"], dtype=np.int64)  # the page's fresh samples (B, T)
ANALYSIS_TARGETS = np.array(TOYFORMER["analysis_targets"], dtype=np.int64)  # and their targets (B, P)
check("accuracy on the page's samples", accuracy(ANALYSIS, ANALYSIS_TARGETS), TOYFORMER["accuracy"], tol=1e-6)

fresh = make_batch(np.random.default_rng(0), TOYFORMER["fresh_samples"])  # this notebook's own samples
acc, tf_acc, n = accuracy(fresh, targets(fresh)), TOYFORMER["fresh_accuracy"], len(fresh)
# Two independent draws of n sequences each: allow 4 standard errors of their difference, plus 0.01.
tol = 0.01 + 4 * math.sqrt(2 * max(tf_acc * (1 - tf_acc), 1e-4) / n)
check("accuracy on fresh samples", acc, tf_acc, tol=tol)
