"""Experiment (issue 17), the follow-up of lowres_view.py, run by hand after it (it reads the features it cached):

    python tools/experiments/lowres_protocol.py

lowres_view.py found that one more training view (each image at a 128 px short side, then re-encoded) lifts the
semantic head's mean ROC AUC over the cross-curation pairs from 0.737 to 0.830. That script fits the head only;
this one runs the semantic expert through the leave-out protocol exactly as notebook 03's backbone comparison does
(protocol.run_semantic_fold: the fold's head, its calibration and its `ai` threshold fitted out of source, on
cross-fitted leave-curation-out logits of the fold's training and validation views), so that what decides the
verdict is measured too: real photos of unseen sources flagged `ai` at the fold's threshold, and StyleGAN2's TPR.

The low-resolution views are training material only: they join the fold's head and every cross-fitted head, and are
never scored, calibrated on or counted in a threshold (an upload is scored raw; the check re-encodes it at 384 px).

Folds: the 9 cross-curation pairs, the 4 real packages, StyleGAN2 and openpeople. Output:
reports/experiments/lowres_protocol.csv and the headline figures of both variants.

Result (2026-12-04, 2.8 min on 2 cores with the features cached). The baseline reproduces the committed model card's
semantic figures exactly (pairs 0.774, lowest 0.469; unseen real 0.5 % / 1.4 %; StyleGAN2 0.106, AUC 0.838), so the
comparison is the protocol's own:

  (re-encoded)                      baseline          plus_lowres
  pairs, mean ROC AUC (lowest)      0.774 (0.469)     0.833 (0.524)
  unseen real flagged, mean / worst 0.5 % / 1.4 %     0.8 % / 2.3 %
  StyleGAN2 held out, TPR @ 5 % FPR 0.106 (AUC 0.838) 0.141 (AUC 0.844)

So the view lifts the headline by 0.06 and keeps the unseen-real rates far inside their targets (5 % / 10 %). It is in
the recipe (DetectorRecipe.lowres_views) and shipped with the default model (1421240): its card reads pairs 0.833, unseen real
flagged 0.8 % / 2.3 %, StyleGAN2 0.141, as predicted here.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import protocol, summary
from lowres_view import low_resolution
from report_sample import report_views, semantic_features

COLUMNS = ["held out", "kind", "ROC AUC", "TPR @ 5% FPR", "flagged ai", "threshold"]


def held_out_groups(frame: pd.DataFrame) -> list[protocol.HeldOut]:
    """The folds these experiments run: the cross-curation pairs, the real packages, openpeople and StyleGAN2."""
    groups = [g for g in protocol.held_out_groups(frame) if g.kind in {"curation pair", "package"}
              and (g.label != 1 or g.name == "package: openpeople")]
    return groups + [g for g in protocol.held_out_groups(frame, kinds=("generator",)) if g.name == "generator: stylegan2"]


def semantic_fold(frame: pd.DataFrame, features: dict, held: protocol.HeldOut, recipe, backbone: protocol.Backbone) -> dict:
    """The re-encoded row of protocol.run_semantic_fold (which trains every head on the low-resolution views when
    ``recipe.lowres_views``, and never scores them)."""
    rows = protocol.run_semantic_fold(frame, features, held, recipe, backbone, rounds=200)
    return next(row for row in rows if row["view"] == "re-encoded")


def headline_figures(part: pd.DataFrame) -> dict[str, float]:
    """One variant's figures, as the model card reads them (protocol.headline, re-encoded view)."""
    line = protocol.headline(part)
    return {"pairs mean AUC": line["cross_curation_mean_auc"], "pairs lowest AUC": line["cross_curation_min_auc"],
            "unseen real mean flagged": line["unseen_real_flagged_mean"], "unseen real worst flagged": line["unseen_real_flagged_max"],
            "StyleGAN2 TPR @ 5% FPR": line["stylegan2_tpr_at_5pct_fpr"], "StyleGAN2 AUC": line["stylegan2_auc"]}


def run_variants(frame: pd.DataFrame, features: dict, variants: dict, name: str) -> pd.DataFrame:
    """Every fold for every (variant: (recipe, features)), the table saved as reports/experiments/<name>.csv, and
    each variant's headline figures (one column each)."""
    backbone = protocol.Backbone("clip_vit_b16", None, next(iter(variants.values()))[0].semantic_feature)
    rows = []
    for held in held_out_groups(frame):
        for variant, (recipe, variant_features) in variants.items():
            rows.append({"variant": variant, **semantic_fold(frame, features | variant_features, held, recipe, backbone)})
        print(pd.DataFrame(rows[-len(variants):])[["variant", *COLUMNS]].round(3).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    table[["variant", *COLUMNS]].to_csv(ROOT / "reports/experiments" / f"{name}.csv", index=False)
    figures = pd.DataFrame({variant: headline_figures(part) for variant, part in table.groupby("variant", sort=False)})
    print(figures.round(3).to_string())
    return figures


def main() -> None:
    recipe = summary.shipped_recipe(Detector.load(ROOT / "models/default"))
    frame, pixels, reencoded = report_views()
    embed = semantic_features(recipe)
    features = {"raw": embed(pixels, "raw"), "re-encoded": embed(reencoded, "q90"), "lowres": embed(pixels.map(low_resolution), "lowres")}
    variants = {"baseline": (dataclasses.replace(recipe, lowres_views=False), {}),
                "plus_lowres": (dataclasses.replace(recipe, lowres_views=True), {})}
    run_variants(frame, features, variants, "lowres_protocol")


if __name__ == "__main__":
    main()
