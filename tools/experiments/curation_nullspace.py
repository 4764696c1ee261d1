"""Experiment (issue 17, item 3: a semantic expert that holds on curations it never saw), run by hand:

    python tools/experiments/curation_nullspace.py

The semantic head learns what tells *these* AI packages from *these* real ones, and part of that is each
curation's house style (ComfyUI's showcase look, the stock templates' polish, NBA's cut-outs), which
does not carry to a curation it never saw: "polished portrait = AI" on the fake-avatars + stock-* pair.
Within one class, whatever separates one curation from another is style, not "AI or camera". This removes
those directions from the features before the head is fitted (a linear nullspace projection, in the line of
Ravfogel et al.'s INLP, here in one step): for each class, the curations' mean features about the class
mean span the style directions; the top ``rank`` of them (SVD over both classes) are projected out of every
feature, training and test alike.

For each cross-curation pair (notebook 03's protocol, the pair and its source groups left out) and the
in-source test split, the shipped recipe's head is fitted on the training rows' raw and re-encoded (q90)
views of the standardised CLIP ``blocks`` features, with the style directions (learnt on those same rows)
removed at each ``rank``; scored on the held-out rows, raw and q90.

Result (2026-12-04, reports/experiments/curation_nullspace.csv, 1.3 min on 2 cores with the features cached):
**not adopted**. Mean ROC AUC over the 9 pairs, q90 view (raw in brackets):

  rank 0 (as shipped)  0.740 (0.747)      rank 16  0.725 (0.743)
  rank 4               0.731 (0.746)      rank 32  0.739 (0.751)
  rank 8               0.728 (0.739)

Removing the style directions helps the pair where the stock templates' polish read as "AI"
(comfyui-edits+comfyui-templates + stock-* 0.799 → 0.857 at rank 16) and hurts others as much
(openpeople + gcompris-qt-data 0.698 → 0.634, realesrgan-x4plus + kphotoalbum 0.871 → 0.821); the GAN-face
pairs stay where they were (fake-avatars + stock-* 0.533 → 0.515, dcgan-digiface + nba-headshots 0.228 →
0.230). In source nothing moves (0.999). What the held-out GAN faces lack is not removed by taking the
training curations' styles away: the training set holds nothing that looks like them.

Output: reports/experiments/curation_nullspace.csv and the summary printed at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import summary
from aiornot.io import datasets
from aiornot.model.experts import fit_semantic_head
from aiornot.training.out_of_source import curations
from report_sample import folds, report_views, save_table, semantic_features, separation

VIEWS = ("raw", "q90")
RANKS = (0, 4, 8, 16, 32)


def style_directions(features: np.ndarray, labels: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning the within-class curation means (each class's curations about its mean), largest first."""
    offsets = []
    for label in (0, 1):
        in_class = labels == label
        class_mean = features[in_class].mean(axis=0)
        for name in np.unique(names[in_class]):
            rows = in_class & (names == name)
            # Weighted by the curation's size (sqrt): a curation of 3 images should not name a direction alone.
            offsets.append(np.sqrt(rows.sum()) * (features[rows].mean(axis=0) - class_mean))
    _, _, directions = np.linalg.svd(np.asarray(offsets), full_matrices=False)
    return directions


def without(features: np.ndarray, directions: np.ndarray) -> np.ndarray:
    return features - (features @ directions.T) @ directions if len(directions) else features


def main() -> None:
    recipe = summary.shipped_recipe(Detector.load(ROOT / "models/default"))
    frame, pixels, reencoded = report_views()
    embed = semantic_features(recipe)
    features = {"raw": embed(pixels, "raw"), "q90": embed(reencoded, "q90")}
    labels, strata, names = frame["label"].to_numpy(), datasets.content_strata(frame), curations(frame)
    rows = []
    for fold in folds(frame):
        trained = fold.trained
        train_x = np.vstack([features[v][trained] for v in VIEWS])
        mean, scale = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6  # the head standardises the same way
        standard = {v: (features[v] - mean) / scale for v in VIEWS}
        directions = style_directions(np.vstack([standard[v][trained] for v in VIEWS]), np.tile(labels[trained], len(VIEWS)),
                                      np.tile(names[trained], len(VIEWS)))
        for rank in RANKS:
            kept = directions[:rank]
            head = fit_semantic_head(np.vstack([without(standard[v][trained], kept) for v in VIEWS]),
                                     np.tile(labels[trained], len(VIEWS)), np.tile(strata[trained], len(VIEWS)), recipe)
            for view in VIEWS:
                scores = head.logits(without(standard[view][fold.held], kept))
                rows.append({"held out": fold.name, "variant": f"rank {rank:02d}", "view": view} | separation(labels[fold.held], scores))
        print(pd.DataFrame(rows[-len(RANKS) * len(VIEWS):]).round(3).to_string(index=False), flush=True)
    save_table(rows, "curation_nullspace", ["ROC AUC", "TPR @ 5% FPR"])


if __name__ == "__main__":
    main()
