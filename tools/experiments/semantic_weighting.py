"""Experiment (issue 17), run by hand after `make reports` (it reads the cached CLIP features and notebook 02's split):

    python tools/experiments/semantic_weighting.py [variant ...]

Does the semantic head generalise better across curations when no one curation can dominate its fit?

The shipped head weighs each (class, portrait) cell the same, so a large curation (StyleGAN2's 263 faces, gcompris'
270 photos) carries its whole count inside its cell, and what is peculiar to it becomes "AI" or "real". The variants
here refit the semantic expert alone through every fold of notebook 03's protocol (`protocol.compare_backbones`,
calibration and threshold out of source as shipped) and print the headline figures side by side
(reports/experiments/semantic_weighting.csv):

  shipped         (class, portrait) cells equal (the recipe)
  C=0.05, C=1     the same, with a stronger / weaker L2 penalty (shipped: C=0.2)
  curation-equal  within each (class, portrait) cell, every curation weighs the same
  curation-sqrt   within each cell, a curation weighs in proportion to the square root of its size

Result (2026-12-03, 2 CPU cores, 13 min for the five): the "shipped" column reproduces the model card's clip_vit_b16
(blocks) row exactly. No variant moves the headline beyond noise: cross-curation pairs mean AUC 0.746 (shipped),
0.741 (C=0.05), 0.726 (C=1), 0.750 (curation-equal), 0.754 (curation-sqrt); StyleGAN2 TPR @ 5 % FPR 0.11–0.14 in all;
C=1 flags more unseen real photos (worst source 17.6 %). The diffusion family held out stays at 0.40–0.49. The recipe
is kept: how the head weighs the curations it has is not what limits it; the curations it lacks are.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pandas as pd

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import protocol, summary
from aiornot.io import datasets
from aiornot.model import encoders, experts
from aiornot.training.out_of_source import curations
from report_sample import report_views

SHIPPED_WEIGHTS = experts.balanced_weights
SHIPPED_STRATA = datasets.content_strata


def curation_weights(power: float):
    """Weights: classes equal, portrait cells equal within a class, curations by size**power within a cell (0: equal)."""

    def weights(labels: np.ndarray, strata: np.ndarray | None = None) -> np.ndarray:
        cells = np.array([str(s).split("|", 1)[0] for s in strata])
        names = np.array([str(s).split("|", 1)[1] for s in strata])
        out = np.zeros(len(labels))
        for in_class in (np.asarray(labels) == label for label in np.unique(labels)):
            class_cells = np.unique(cells[in_class])
            for cell in class_cells:
                in_cell = in_class & (cells == cell)
                sizes = {name: int(np.sum(in_cell & (names == name))) for name in np.unique(names[in_cell])}
                share = {name: size ** power for name, size in sizes.items()}
                total = sum(share.values())
                for name, size in sizes.items():
                    out[in_cell & (names == name)] = share[name] / total / size / len(class_cells)
        return out * len(labels) / out.sum()

    return weights


def with_curation_strata(frame: pd.DataFrame, column: str | None = "portrait") -> np.ndarray:
    return np.array([f"{p}|{n}" for p, n in zip(SHIPPED_STRATA(frame, column), curations(frame))])


VARIANTS = {"shipped": {}, "C=0.05": {"semantic_C": 0.05}, "C=1": {"semantic_C": 1.0},
            "curation-equal": {"power": 0.0}, "curation-sqrt": {"power": 0.5}}


def main() -> None:
    chosen = sys.argv[1:] or list(VARIANTS)
    frame, pixels, reencoded = report_views()
    detector = Detector.load(ROOT / "models/default")
    encoder = encoders.OnnxImageEncoder()
    store = encoders.FeatureStore(ROOT / "data/cache/features" / encoder.id)
    base = summary.protocol_fold_recipe(detector, epochs=6, steps_per_epoch=20)
    groups = protocol.held_out_groups(frame, min_images=5, min_real_images=20)
    modern = sorted(frame.loc[frame["family"] == "diffusion", "generator"].astype(str).unique())  # as notebook 03
    tables = []
    for name in chosen:
        change = dict(VARIANTS[name])
        power = change.pop("power", None)
        recipe = dataclasses.replace(base, **change)
        experts.balanced_weights = SHIPPED_WEIGHTS if power is None else curation_weights(power)
        datasets.content_strata = SHIPPED_STRATA if power is None else with_curation_strata
        backbone = protocol.Backbone(name, encoder, base.semantic_feature, store)
        tables.append(protocol.compare_backbones(frame, pixels, reencoded, groups, recipe, [backbone], progress=False))
        print(protocol.backbone_summary(pd.concat(tables), modern_family_generators=modern).round(3).to_string(), flush=True)
    experts.balanced_weights, datasets.content_strata = SHIPPED_WEIGHTS, SHIPPED_STRATA
    out = ROOT / "reports/experiments/semantic_weighting.csv"
    protocol.backbone_summary(pd.concat(tables), modern_family_generators=modern).to_csv(out)
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
