L, H = cfg.n_layers, cfg.n_heads
for kind in "QKV":
    # TL's own composition scores on the processed model: (earlier layer, head, later layer, head)
    scores = pmodel.all_composition_scores(kind).scores.double()
    fig = px.imshow(scores.reshape(L * H, L * H).numpy(), color_continuous_scale="Blues", zmin=0,
                    labels=dict(x="later head (layer·heads + head)", y="earlier head"), title=f"{kind}-composition")
    fig.show()
    ours = torch.tensor(TOYFORMER["composition"][kind.lower()]).reshape(L, H, L, H)
    for la in range(L):
        for lb in range(la + 1, L):
            for ha in range(H):
                for hb in range(H):
                    check(f"{kind}-composition L{la}H{ha} -> L{lb}H{hb}", scores[la, ha, lb, hb], ours[la, ha, lb, hb])
