"""Robustness and saliency: each scorer's metrics after JPEG, resizing and blur of the same images, and an
occlusion map that shows which patches made an image look AI. Scorers are plain callables (images → P(AI)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from aiornot.evaluation.metrics import summary
from aiornot.io import lazy, transforms

Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]


def robustness(images: Sequence[np.ndarray], labels: np.ndarray, scorers: dict[str, Scorer],
               conditions: dict[str, Callable[[np.ndarray], np.ndarray]], thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """Each scorer's metrics after each transform (JPEG, downscaling, blur …) of the same images."""
    from tqdm import tqdm

    rows = []
    for condition, transform in tqdm(conditions.items(), desc="robustness", unit="condition"):
        changed = lazy.mapped(images, transform)  # lazy images stay lazy: one batch at a time
        for name, scorer in scorers.items():
            threshold = (thresholds or {}).get(name, 0.5)
            rows.append({"model": name, "condition": condition, **summary(labels, scorer(changed), threshold)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ saliency
def occlusion_map(scorer: Scorer, pixels: np.ndarray, *, patch: int = 32, stride: int | None = None, fill: int = 128) -> np.ndarray:
    """How much P(AI) drops when each patch is greyed out (positive = the patch made it look AI).

    A backend-neutral saliency (no gradients), so it works for any model and any Keras backend.
    Returns a map at the patch grid's resolution.
    """
    stride = stride or patch
    height, width = pixels.shape[:2]
    base = float(scorer([pixels])[0])
    tops, lefts = range(0, max(1, height - patch + 1), stride), range(0, max(1, width - patch + 1), stride)
    occluded = []
    for top in tops:
        for left in lefts:
            copy = pixels.copy()
            copy[top : top + patch, left : left + patch] = fill
            occluded.append(copy)
    drops = base - np.asarray(scorer(occluded), dtype=np.float64)
    return drops.reshape(len(tops), len(lefts))


@dataclass
class SeedScorer:
    """Scores whole images with the seed's CNN: resize to its input size, scale to [0, 1]."""

    model: object
    image_size: int = 256

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros(0)
        outputs = [np.asarray(self.model.predict_on_batch(transforms.resized_images(images[i : i + 16], self.image_size))).reshape(-1)
                   for i in range(0, len(images), 16)]
        return np.concatenate(outputs).astype(np.float64)


def shared_scorers(compute: Callable[[Sequence[np.ndarray]], dict[str, np.ndarray]]) -> Callable[[str], Scorer]:
    """Scorers that share one ``compute`` call per image list: ``compute(images) -> {name: scores}``.

    A fused detector and each of its experts are read from one pass of both experts, instead of
    one pass per scorer (the forensic CNN on up to 64 tiles per image is the slow part). The last
    image list is remembered by identity, so scoring a *new* list (another transform) recomputes.

    >>> scorer_for = shared_scorers(lambda images: {"a": np.ones(len(images)), "b": np.zeros(len(images))})
    >>> scorer_for("b")([np.zeros((2, 2, 3))])
    array([0.])
    """
    last: dict[str, object] = {"images": None, "scores": None}

    def scores_of(images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        if last["images"] is not images:
            last["images"], last["scores"] = images, compute(images)
        return last["scores"]  # type: ignore[return-value]

    return lambda name: (lambda images: scores_of(images)[name])
