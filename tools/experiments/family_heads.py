"""Experiment (issue 17), run by hand after `make reports` (it reads the cached features): python tools/experiments/family_heads.py

One semantic head vs one head per family, on the cross-curation pairs.

Result (2026-12-03, reports/experiments/family_heads.csv): per-family heads look better on in-pool cross-fitted logits but
are worse on held-out pairs (re-encoded mean AUC max2 0.646, stack2 0.642 vs single 0.715) and flag more held-out real
photos; the shipped recipe keeps one head.

Reads cached CLIP `blocks` features (never computes new ones unless missing). For each pair fold:
train on every non-held row (train+validation splits), test on the held pair (raw and re-encoded).
Variants:
  single      : one head, all AI vs real (the shipped recipe)
  max2        : two heads (diffusion-like vs real, GAN-like vs real); P(AI) = max of their Platt-calibrated probs
  stack2      : two heads, logits stacked by a logistic regression fitted on cross-fitted (leave-curation-out) logits
Also: share of held-out real flagged at a threshold giving 5% FPR on cross-fitted real logits (out of source).
"""
import time
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from aiornot.evaluation import protocol
from aiornot.io import datasets
from aiornot.model import encoders
from aiornot.training import train
from aiornot.model.experts import fit_semantic_head
from aiornot.training.out_of_source import curations, curation_folds
from aiornot.contract.paths import ROOT
from report_sample import report_views

recipe = train.DetectorRecipe(semantic_feature="blocks", semantic_C=0.2)
frame, pixels, reenc = report_views()
enc = encoders.OnnxImageEncoder()
store = encoders.FeatureStore(ROOT / "data/cache/features" / enc.id)
t = time.time()
feats = {v: encoders.embed_with_store(enc, imgs, store, kind="blocks", progress=True, description=v) for v, imgs in (("raw", pixels), ("re-encoded", reenc))}
print("features", time.time() - t, flush=True)
labels = frame["label"].to_numpy(); strata = datasets.content_strata(frame); names = curations(frame)
fam = frame["family"].astype(str).to_numpy()
is_gan = np.isin(fam, ["gan", "gan_upscale"])

def fit(x, y, s):
    return fit_semantic_head(x, y, s, recipe)

def stacked(mask):
    return (np.concatenate([feats[v][mask] for v in feats]), np.tile(labels[mask], 2), np.tile(strata[mask], 2),
            np.tile(names[mask], 2), np.tile(is_gan[mask], 2))

def heads(x, y, s, g):
    diff = fit(x[~(g & (y == 1))], y[~(g & (y == 1))], s[~(g & (y == 1))])
    gan = fit(x[~(~g & (y == 1))], y[~(~g & (y == 1))], s[~(~g & (y == 1))])
    return diff, gan

def oof_logits(x, y, s, n, g, folds):
    out = {"single": np.full(len(y), np.nan), "diff": np.full(len(y), np.nan), "gan": np.full(len(y), np.nan)}
    for held in folds:
        one = fit(x[~held], y[~held], s[~held]); out["single"][held] = one.logits(x[held])
        d, a = heads(x[~held], y[~held], s[~held], g[~held]); out["diff"][held] = d.logits(x[held]); out["gan"][held] = a.logits(x[held])
    return out

rows = []
pairs = protocol.curation_pairs(frame, min_images=5, min_real_images=20)
for held in pairs:
    pool = ~held.rows
    x, y, s, n, g = stacked(pool)
    folds = [np.tile(m, 2) for m in curation_folds(n[: pool.sum()], y[: pool.sum()], 3)]
    oof = oof_logits(x, y, s, n, g, folds)
    single = fit(x, y, s); d, a = heads(x, y, s, g)
    platt = {k: LogisticRegression().fit(oof[k][:, None], y) for k in oof}
    stack = LogisticRegression().fit(np.c_[oof["diff"], oof["gan"]], y)
    def score(variant, xt):
        if variant == "single": return platt["single"].predict_proba(single.logits(xt)[:, None])[:, 1], platt["single"].predict_proba(oof["single"][:, None])[:, 1]
        pd_, pg = platt["diff"].predict_proba(d.logits(xt)[:, None])[:, 1], platt["gan"].predict_proba(a.logits(xt)[:, None])[:, 1]
        od, og = platt["diff"].predict_proba(oof["diff"][:, None])[:, 1], platt["gan"].predict_proba(oof["gan"][:, None])[:, 1]
        if variant == "max2": return np.maximum(pd_, pg), np.maximum(od, og)
        return stack.predict_proba(np.c_[d.logits(xt), a.logits(xt)])[:, 1], stack.predict_proba(np.c_[oof["diff"], oof["gan"]])[:, 1]
    for view in feats:
        xt, yt = feats[view][held.rows], labels[held.rows]
        for variant in ("single", "max2", "stack2"):
            st, so = score(variant, xt)
            thr = np.quantile(so[y == 0], 0.95)
            rows.append({"pair": held.name, "view": view, "variant": variant, "auc": roc_auc_score(yt, st),
                         "oof_auc": roc_auc_score(y, so), "real_flagged": float(np.mean(st[yt == 0] >= thr)),
                         "ai_caught": float(np.mean(st[yt == 1] >= thr))})
    print(pd.DataFrame(rows[-6:]).round(3).to_string(), flush=True)
table = pd.DataFrame(rows)
(ROOT / "reports/experiments").mkdir(parents=True, exist_ok=True)
table.to_csv(ROOT / "reports/experiments/family_heads.csv", index=False)
print(table.groupby(["view", "variant"])[["auc", "oof_auc", "real_flagged", "ai_caught"]].mean().round(3).to_string())
