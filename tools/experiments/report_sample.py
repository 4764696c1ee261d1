"""What every experiment here reads and writes: the sample with the split `make reports` saved, as lazy views; the
cross-curation folds with the rows each may train on; and the result table, saved and summarised."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from aiornot.contract.paths import ROOT
from aiornot.evaluation import metrics, protocol
from aiornot.io import datasets, lazy, transforms
from aiornot.model import encoders
from aiornot.training.out_of_source import fold_training_masks

#: The false-positive rate the experiments' TPR is read at, on the held-out real images.
TARGET_FPR = 0.05


def report_views() -> tuple[pd.DataFrame, lazy.LazyImages, lazy.LazyImages]:
    """The labelled sample (notebook 02's saved split), its images, and their re-encoded copies (384 px, JPEG q90)."""
    # Checked against notebook 02's split when `make reports` has written it; the split is the seed's either way.
    saved = ROOT / "build/full/splits.csv"
    labelled, _ = datasets.prepare_split(ROOT / "data/sample", None, seed=42, saved_splits=saved if saved.is_file() else None,
                                         progress=False)
    frame = labelled.reset_index(drop=True)
    pixels = lazy.images(frame)
    return frame, pixels, pixels.map(transforms.reencode_like_upload)


class Fold(NamedTuple):
    name: str
    held: np.ndarray  # the rows tested
    trained: np.ndarray  # the rows a model of this fold may fit on: not held, no shared source group, not the test split


def folds(frame: pd.DataFrame) -> Iterator[Fold]:
    """Each cross-curation pair (notebook 03's protocol), then the in-source test split."""
    split = frame["split"].to_numpy()
    held_out = [(g.name, g.rows) for g in protocol.held_out_groups(frame, kinds=("curation pair",))]
    for name, held in [*held_out, ("in-source test split", split == "test")]:
        # The split is grouped by source, so for the test-split fold this is every train and validation row.
        [unseen] = fold_training_masks([held], protocol.source_groups(frame))
        yield Fold(name, held, unseen & (split != "test"))


def separation(truth: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC, and TPR at ``TARGET_FPR`` of the held-out real images (the project's one rule, metrics.tpr_at_fpr)."""
    return {"ROC AUC": roc_auc_score(truth, scores), "TPR @ 5% FPR": metrics.tpr_at_fpr(truth, scores, TARGET_FPR)}


def semantic_features(recipe: Any) -> Callable[[Sequence[np.ndarray], str], np.ndarray]:
    """Embed images as the shipped semantic expert reads them (``recipe.semantic_feature``), through the feature store
    notebook 02 uses (data/cache/features), so each picture is embedded once across experiments."""
    encoder = encoders.OnnxImageEncoder()
    store = encoders.FeatureStore(ROOT / "data/cache/features" / encoder.id)

    def embed(images: Sequence[np.ndarray], description: str) -> np.ndarray:
        return encoders.embed_with_store(encoder, images, store, kind=recipe.semantic_feature, progress=True, description=description)

    return embed


def save_table(rows: list[dict], name: str, metrics: list[str]) -> pd.DataFrame:
    """Write ``reports/experiments/<name>.csv`` and print each variant and view's mean over the pairs and the test split."""
    table = pd.DataFrame(rows)
    out = ROOT / "reports/experiments" / f"{name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    kind = np.where(table["held out"].str.startswith("pair"), "pairs (mean)", "in-source test split")
    print(table.assign(kind=kind).groupby(["kind", "variant", "view"])[metrics].mean().round(3).to_string())
    return table
