SCORED = [p + 1 for p in PRED_POSITIONS]


def accuracy(tokens):
    """Mean over sequences of the fraction of predicted positions whose argmax is the next token."""
    logits = model(torch.tensor(tokens, dtype=torch.long))  # (B, T, d_vocab_out)
    pred = logits[:, PRED_POSITIONS, :].argmax(-1).numpy()
    return (pred == tokens[:, SCORED]).mean()


ANALYSIS = np.array(TOYFORMER["analysis_tokens"], dtype=np.int64)  # the page's fresh samples (B, T)
check("accuracy on the page's samples", accuracy(ANALYSIS), TOYFORMER["accuracy"], tol=1e-6)

fresh = make_batch(np.random.default_rng(0), TOYFORMER["fresh_samples"])  # this notebook's own samples
acc, tf_acc, n = accuracy(fresh), TOYFORMER["fresh_accuracy"], len(fresh)
# Two independent draws of n sequences each: allow 4 standard errors of their difference, plus 0.01.
tol = 0.01 + 4 * math.sqrt(2 * max(tf_acc * (1 - tf_acc), 1e-4) / n)
check("accuracy on fresh samples", acc, tf_acc, tol=tol)
