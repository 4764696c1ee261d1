"""Experiment (issue 17, item 3: a stronger semantic expert), run by hand:

    python tools/experiments/native_crop.py

The semantic expert reads CLIP's input convention: the shortest side resized to 224 px, then a centre crop. On a
1024 px photo that down-sampling removes most of the low-level traces a generator leaves; UnivFD (Ojha et al., CVPR
2023) and Cozzolino et al. (CVPR-W 2024) feed CLIP a 224 px crop at *native* resolution instead. Does that view, or
both views averaged, hold better on curations the head never saw?

For each cross-curation pair (notebook 03's protocol) and the in-source test split, semantic heads are fitted with the
shipped recipe on the training rows' raw and re-encoded (384 px, JPEG q90) views, in three variants:

  resized       the shipped view (shortest side → 224, centre crop)
  native_crop   a centre 224² crop at native resolution (images under 224 px are resized up as before)
  both          the mean of the two heads' logits

and scored on the held-out images raw and re-encoded. Reported: ROC AUC, and the share of AI images at or above the
threshold that lets 5 % of the held-out real images through (TPR at 5 % FPR, one threshold per fold and view).

Result (2026-12-04, reports/experiments/native_crop.csv, 10 min on 2 cores with the crops embedded): **not adopted**.
Mean over the 9 cross-curation pairs, scored on the re-encoded copies (raw copies in brackets):

  variant       ROC AUC         TPR @ 5 % FPR
  resized       0.737 (0.746)   0.434 (0.465)   as shipped
  native_crop   0.730 (0.698)   0.449 (0.512)
  both          0.739 (0.717)   0.466 (0.468)   (two CLIP passes: twice the semantic expert's time)

The crop helps six pairs (fake-avatars + stock-* 0.527 → 0.597, comfyui-templates + stock-* 0.799 → 0.828) and hurts
three, most where the picture is small and up-scaled (dcgan-digiface + nba-headshots 0.217 → 0.091, openpeople +
gcompris 0.699 → 0.609); the mean does not move, and on the raw files it falls. In source all three are at 0.998–1.000.
Neither view is what holds the GAN-face pairs back.

Output: reports/experiments/native_crop.csv and the summary printed at the end. Features are kept in
data/cache/features (the store notebook 02 uses): the crops are embedded once, about 25 min on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import summary
from aiornot.io import datasets
from aiornot.model.experts import fit_semantic_head
from report_sample import folds, report_views, save_table, semantic_features, separation

CROP = 224
TEST_VIEWS = ("raw", "q90")


def native_centre_crop(pixels: np.ndarray, size: int = CROP) -> np.ndarray:
    """The centred ``size``² window at native resolution (the whole of a side shorter than ``size``)."""
    height, width = pixels.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return pixels[top : top + size, left : left + size]


def main() -> None:
    recipe = summary.shipped_recipe(Detector.load(ROOT / "models/default"))
    frame, pixels, reencoded = report_views()
    features = semantic_features(recipe)
    views = {
        "resized": {"raw": features(pixels, "raw"), "q90": features(reencoded, "q90")},
        "native_crop": {"raw": features(pixels.map(native_centre_crop), "raw crop"),
                        "q90": features(reencoded.map(native_centre_crop), "q90 crop")},
    }
    labels, strata = frame["label"].to_numpy(), datasets.content_strata(frame)
    rows = []
    for fold in folds(frame):
        logits: dict[str, dict[str, np.ndarray]] = {}
        trained = fold.trained
        for variant, by_view in views.items():
            head = fit_semantic_head(np.vstack([by_view[v][trained] for v in TEST_VIEWS]), np.tile(labels[trained], len(TEST_VIEWS)),
                                     np.tile(strata[trained], len(TEST_VIEWS)), recipe)
            logits[variant] = {view: head.logits(by_view[view][fold.held]) for view in TEST_VIEWS}
        logits["both"] = {view: (logits["resized"][view] + logits["native_crop"][view]) / 2 for view in TEST_VIEWS}
        for variant, by_view in logits.items():
            for view, scores in by_view.items():
                rows.append({"held out": fold.name, "variant": variant, "view": view} | separation(labels[fold.held], scores))
        print(pd.DataFrame(rows[-len(logits) * len(TEST_VIEWS):]).round(3).to_string(index=False), flush=True)
    save_table(rows, "native_crop", ["ROC AUC", "TPR @ 5% FPR"])


if __name__ == "__main__":
    main()
