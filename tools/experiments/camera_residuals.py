"""Experiment (issue 17, item 2, its alternative: a model of real-camera residuals learnt from real photos only), run by hand:

    python tools/experiments/camera_residuals.py

The shipped forensic CNN reaches ROC AUC 0.56 on curations it never saw and has fusion weight 0. Issue 17 offers a
second road: model what real cameras leave in the pixels, from real photos only, and call whatever does not fit
suspect (the line of SPAI and Forensic Self-Descriptions, CVPR 2025). This is a small CPU version of the latter:

  descriptor  for each image, the least-squares filter that predicts each luminance pixel from its 5×5 neighbourhood
              (24 weights), at full size and at half size, plus the log variance of each prediction's residual: 50
              numbers that describe how the picture's pixels hang together, not what it shows
  one_class   a Gaussian mixture fitted on the training rows' *real* descriptors only; score: minus its log-likelihood
  supervised  a logistic regression on the same descriptors with both classes (the forensic CNN's road, for contrast)

For each cross-curation pair (notebook 03's protocol) and the in-source test split, both are fitted on the training
rows' raw and re-encoded (384 px, JPEG q90) views and scored on the held-out images, raw and re-encoded. Reported: ROC
AUC and TPR at 5 % FPR (the threshold that lets 5 % of the held-out real images through).

Result (2026-12-04, reports/experiments/camera_residuals.csv, 5 min on 2 cores): **not adopted**; neither holds out
of source. Mean ROC AUC (re-encoded; raw in brackets):

  variant      9 cross-curation pairs   in-source test split
  one_class    0.481 (0.482)            0.577 (0.463)
  supervised   0.567 (0.515)            0.775 (0.746)

The real photos are too unlike one another (phones, DSLRs, scans, Debian wallpapers re-saved as WebP, stock JPEGs) for
one model of "camera pixels": the mixture is near chance even in source. It separates the one pair whose fakes are
tiny up-scaled faces (dcgan-digiface + nba-headshots 1.00) and runs the wrong way on the GAN-face and Real-ESRGAN
pairs (fake-avatars + stock-* 0.28, realesrgan-x4plus + kphotoalbum 0.08): after the 384 px resize and JPEG q90 those
fakes look more camera-like than the real photos do. The supervised variant does no better than the forensic CNN's
0.56 out of source.

Output: reports/experiments/camera_residuals.csv and the summary printed at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from report_sample import folds, report_views, save_table, separation

NEIGHBOURHOOD = 5
WINDOW = 512  # the centred window the filter is fitted on (the whole image when smaller)
VIEWS = ("raw", "q90")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def predictive_filter(luma: np.ndarray) -> np.ndarray:
    """The 24 least-squares weights predicting each pixel from its 5×5 neighbours, and the log residual variance."""
    patches = sliding_window_view(luma, (NEIGHBOURHOOD, NEIGHBOURHOOD)).reshape(-1, NEIGHBOURHOOD * NEIGHBOURHOOD)
    centre = NEIGHBOURHOOD * NEIGHBOURHOOD // 2
    target, neighbours = patches[:, centre], np.delete(patches, centre, axis=1)
    gram = neighbours.T @ neighbours + 1e-3 * np.eye(neighbours.shape[1], dtype=np.float64)
    weights = np.linalg.solve(gram, neighbours.T @ target)
    residual = target - neighbours @ weights
    return np.append(weights, np.log(residual.var() + 1e-6))


def descriptor(pixels: np.ndarray) -> np.ndarray:
    """The image's residual descriptor: the predictive filter at full and at half size (50 numbers)."""
    height, width = pixels.shape[:2]
    top, left = max(0, (height - WINDOW) // 2), max(0, (width - WINDOW) // 2)
    luma = (pixels[top : top + WINDOW, left : left + WINDOW].astype(np.float32) @ LUMA).astype(np.float64)
    half = luma[: luma.shape[0] // 2 * 2, : luma.shape[1] // 2 * 2]
    half = half.reshape(half.shape[0] // 2, 2, half.shape[1] // 2, 2).mean(axis=(1, 3))
    return np.concatenate([predictive_filter(luma), predictive_filter(half)])


def descriptors(images, description: str) -> np.ndarray:
    return np.stack([descriptor(images[i]) for i in tqdm(range(len(images)), desc=description, unit="img")])


def fit_one_class(features: np.ndarray, seed: int = 0):
    """A Gaussian mixture on standardised real descriptors; ``score`` gives minus the log-likelihood (higher: less camera-like)."""
    scaler = StandardScaler().fit(features)
    mixture = GaussianMixture(n_components=4, covariance_type="full", reg_covar=1e-2, random_state=seed).fit(scaler.transform(features))
    return lambda x: -mixture.score_samples(scaler.transform(x))


def fit_supervised(features: np.ndarray, labels: np.ndarray):
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)).fit(features, labels)
    return lambda x: model.decision_function(x)


def main() -> None:
    frame, pixels, reencoded = report_views()
    views = {"raw": descriptors(pixels, "raw"), "q90": descriptors(reencoded, "q90")}
    labels = frame["label"].to_numpy()
    rows = []
    for fold in folds(frame):
        train_x, train_y = np.vstack([views[v][fold.trained] for v in VIEWS]), np.tile(labels[fold.trained], len(VIEWS))
        scorers = {"one_class": fit_one_class(train_x[train_y == 0]), "supervised": fit_supervised(train_x, train_y)}
        for variant, score in scorers.items():
            for view in VIEWS:
                rows.append({"held out": fold.name, "variant": variant, "view": view}
                            | separation(labels[fold.held], score(views[view][fold.held])))
        print(pd.DataFrame(rows[-len(scorers) * len(VIEWS):]).round(3).to_string(index=False), flush=True)
    save_table(rows, "camera_residuals", ["ROC AUC", "TPR @ 5% FPR"])


if __name__ == "__main__":
    main()
