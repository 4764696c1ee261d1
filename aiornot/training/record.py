"""What training produced, as the typed sections of ``detector.json`` (:class:`~aiornot.contract.config.ModelConfig`).

Notebook 02 trains the detector, the seed's CNN as a baseline and the ablation variants; this
module turns those results into the config's training sections — architecture, budget, split,
threshold basis, ablation table — so the notebook records them with one call before
``detector.save``. The architecture is read from the detector itself, never typed in.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from aiornot.contract.config import ModelConfig, validate_config

if TYPE_CHECKING:
    from aiornot.detector import Detector
    from aiornot.training.train import DetectorRecipe, TrainResult

#: What each offline encoder is, by its spec's name (an encoder id is ``<name>-<12 hex of its sha256>``).
ENCODER_DESCRIPTIONS = {
    "clip-vit-b16-float": "CLIP ViT-B/16 in float, rebuilt from the pinned INT8 weights",
    "resnet50-opennsfw": "open_nsfw's thin ResNet-50",
    "vgg16-hed": "HED's VGG16 convolutions",
}
#: How :meth:`aiornot.model.experts.Fusion.fit` combines several experts.
FUSION_METHOD = "logistic stacking"
#: The parts of the grouped split, as ``training_data`` counts them.
SPLITS = ("train", "validation", "test")


def architecture(detector: Detector) -> str:
    """The detector's experts and how they are fused, e.g. ``semantic (<encoder id>: CLIP …, + logistic head) + forensic_detector, logistic stacking``."""
    experts = [detector.model.name]
    if detector.semantic is not None:
        encoder_id = detector.semantic.encoder_id or "unknown encoder"
        description = ENCODER_DESCRIPTIONS.get(encoder_id.rpartition("-")[0])
        encoder = f"{encoder_id}: {description}, " if description else f"{encoder_id} "
        experts.insert(0, f"semantic ({encoder}+ logistic head)")
    return " + ".join(experts) + (f", {FUSION_METHOD}" if len(experts) > 1 else "")


def training_config(detector: Detector, run: TrainResult, recipe: DetectorRecipe, split: pd.DataFrame, *, dataset: str,
                    skipped: int = 0, baseline: TrainResult | None = None, ablation: pd.DataFrame | None = None,
                    created: str | None = None) -> ModelConfig:
    """``detector.config`` with the training sections filled in, validated.

    ``run``: the forensic CNN's training run; ``recipe``: how the detector was made; ``split``: every
    row of the grouped split (``split``, ``label`` and ``generator`` columns); ``dataset``: where the
    data came from; ``skipped``: images that could not be used; ``baseline``: the seed CNN's run;
    ``ablation``: :func:`aiornot.training.ablation.ablation_table`; ``created``: the date (default today).
    """
    import keras

    entries: dict[str, Any] = {
        "architecture": architecture(detector), "parameters": int(detector.model.count_params()),
        "keras_version": keras.__version__, "backend": keras.backend.backend(), "created": created or time.strftime("%Y-%m-%d"),
        "train_config": dataclasses.asdict(recipe.forensic),
        "recipe": {key: value for key, value in dataclasses.asdict(recipe).items() if key != "forensic"},
        "threshold_basis": threshold_basis(detector, recipe, split),
        "training_data": training_data(split, dataset, skipped),
        "training": {"seconds": round(run.seconds, 1), "images_per_second": round(run.images_per_second, 1),
                     "best_epoch": run.best_epoch, "epochs_run": len(run.history)},
    }
    if baseline is not None:
        entries["baseline_training"] = {"model": baseline.config.model, "seconds": round(baseline.seconds, 1),
                                        "epochs_run": len(baseline.history), "best_epoch": baseline.best_epoch,
                                        "images_per_second": round(baseline.images_per_second, 2)}
    if ablation is not None:
        entries["ablation"] = ablation_rows(ablation)
    return validate_config({**detector.config, **entries}, "the training record")


def config_entries(config: ModelConfig) -> dict[str, Any]:
    """The keys ``config`` holds, as ``detector.json`` writes them (column names as aliases; sections never set left out)."""
    return config.model_dump(by_alias=True, exclude_unset=True)


def threshold_basis(detector: Detector, recipe: DetectorRecipe, split: pd.DataFrame) -> dict[str, Any]:
    """How many real-photo views the ``ai`` threshold was chosen on, and whether they were out of source.

    Out of source (``detector.config["out_of_source"]`` set by the cross-fitting): the training and
    validation real photos; otherwise the validation ones. Each counts twice with re-encoded views.
    Fewer than four per allowed false positive is ``too_few``.
    """
    out_of_source = "out_of_source" in detector.config
    pool = ("train", "validation") if out_of_source else ("validation",)
    real = int(((split["label"] == 0) & split["split"].isin(pool)).sum()) * (2 if recipe.reencoded_views else 1)
    return {"validation_real_views": real, "target_fpr": recipe.target_fpr, "too_few": real < 1 / recipe.target_fpr * 4,
            "basis": "out-of-source" if out_of_source else "validation"}


def training_data(split: pd.DataFrame, dataset: str, skipped: int = 0) -> dict[str, Any]:
    """The dataset, its images per part of the split, the generators of its AI images, and whether the split was
    grouped by source (as :func:`aiornot.io.datasets.split` groups: only when every row names its source)."""
    grouped = "source" in split and bool(split["source"].notna().all())
    generators = split.loc[split["label"] == 1, "generator"] if "generator" in split else pd.Series(dtype=object)
    return {"dataset": str(dataset), "images": int(len(split)), "skipped": int(skipped),
            **{name: int((split["split"] == name).sum()) for name in SPLITS},
            "generators": sorted(generators.dropna().astype(str).unique()), "grouped_by": "source" if grouped else None}


def ablation_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The ablation table's rows as the config stores them: numbers to 4 places, a missing one as None."""
    return [{"variant": variant, "expert": expert, **{key: None if pd.isna(value) else round(float(value), 4) for key, value in row.items()}}
            for (variant, expert), row in table.iterrows()]
