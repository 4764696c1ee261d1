"""The measured-choices table of notebook 02: each variant changes one choice of the recipe.

Every variant is scored on the validation images, raw and re-encoded (centre square, 384 px, JPEG
q90), with 95 % bootstrap intervals that resample whole sources. The default detector gives the
first rows (fused, semantic, forensic); then, in the order asked:

* semantic variants refit only the head (features are cached by pixel hash): another layer of the
  same CLIP backbone (``clip_*``), without the GAN face sets (``no_gan_faces``), without portrait
  balancing or re-encoded views, or another offline backbone (``resnet50_opennsfw``, ``vgg16_hed``,
  ``vgg16_hed_block3``, :data:`aiornot.model.encoders.OFFLINE_BACKBONES`);
* forensic variants retrain the CNN (``no_highpass``, ``portrait_balanced``), or score the trained
  CNN on 4 central crops instead of up to ``max_tiles`` tiles (``four_crops``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from aiornot.evaluation import metrics
from aiornot.io import lazy
from aiornot.training import train

if TYPE_CHECKING:
    from aiornot.detector import Detector

#: The face sets ``no_gan_faces`` drops from training: they teach "a face means AI".
GAN_FACE_GENERATORS = ("stylegan2", "dcgan")


@dataclass(frozen=True)
class SemanticVariant:
    """A semantic head refitted with ``change`` applied to the recipe (fields of :class:`~aiornot.training.train.DetectorRecipe`).

    ``without_generators``: training images of these generators are left out. ``backbone``: an
    :data:`~aiornot.model.encoders.OFFLINE_BACKBONES` name whose features the head reads instead of
    the detector's own encoder.
    """

    change: dict[str, Any] = field(default_factory=dict)
    without_generators: tuple[str, ...] = ()
    backbone: str | None = None


SEMANTIC_VARIANTS = {
    "clip_embeds": SemanticVariant({"semantic_feature": "embeds"}),
    "clip_blocks": SemanticVariant({"semantic_feature": "blocks"}),
    "clip_cls": SemanticVariant({"semantic_feature": "cls"}),
    "clip_patches": SemanticVariant({"semantic_feature": "patches"}),
    "no_gan_faces": SemanticVariant(without_generators=GAN_FACE_GENERATORS),
    "no_portrait_balance": SemanticVariant({"balance_portraits": False}),
    "no_reencoded_views": SemanticVariant({"reencoded_views": False}),
    "resnet50_opennsfw": SemanticVariant({"semantic_feature": "embeds"}, backbone="resnet50_opennsfw"),
    "vgg16_hed": SemanticVariant({"semantic_feature": "embeds"}, backbone="vgg16_hed"),
    "vgg16_hed_block3": SemanticVariant({"semantic_feature": "block3"}, backbone="vgg16_hed"),
}
#: Forensic variants that retrain the CNN: the change to the recipe's :class:`~aiornot.training.train.TrainConfig`.
FORENSIC_VARIANTS = {"no_highpass": {"model_options": {"highpass": False}}, "portrait_balanced": {"balance_strata": True}}
#: The trained CNN scored on the older fixed grid of 4 central crops.
FOUR_CROPS = "four_crops"
VARIANTS = (*SEMANTIC_VARIANTS, *FORENSIC_VARIANTS, FOUR_CROPS)


@dataclass(frozen=True)
class Split:
    """One side of the grouped split as the ablation reads it.

    ``strata``: the portrait flag (training). ``generators``: each image's generator (training, for
    ``no_gan_faces``). ``groups``: each image's source, the unit the bootstrap resamples
    (validation; None: each image on its own).
    """

    images: Sequence[np.ndarray]
    labels: np.ndarray
    strata: np.ndarray | None = None
    generators: np.ndarray | None = None
    groups: np.ndarray | None = None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, images: Sequence[np.ndarray], strata: np.ndarray | None = None) -> "Split":
        """A split's rows (``label``, and ``generator`` and ``source`` where present) with their images."""
        generators = frame["generator"].astype(str).to_numpy() if "generator" in frame else None
        sources = frame["source"] if "source" in frame else None
        groups = sources.astype(str).to_numpy() if sources is not None and sources.notna().all() else None
        return cls(images, frame["label"].to_numpy(), strata, generators, groups)


def ablation_table(detector: Detector, run: train.TrainResult, recipe: train.DetectorRecipe, training: Split, validation: Split,
                   variants: Sequence[str] = (), *, encoder: Any = None, store: Any = None, feature_store: Path | None = None,
                   rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The default detector's rows, then one row per variant: validation ROC AUC raw and re-encoded, with intervals.

    ``run``: the forensic CNN's training run (its model and seconds). ``encoder`` / ``store``: the
    semantic expert's encoder and feature store; ``feature_store``: the folder other backbones'
    stores go in (one subfolder per encoder id; None: no cache). Indexed by (variant, expert);
    columns ``AUC raw``, ``raw low``, ``raw high``, the same for ``re-encoded``, and ``seconds``.
    An unknown variant is refused before anything is fitted.
    """
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation {unknown[0]!r}; choose from {sorted(VARIANTS)}")
    measure = _Measure(validation, rounds, seed)
    expert_views = detector.expert_scores(measure.views)
    rows = [measure("default", "fused", detector.fuse(expert_views)),
            measure("default", "semantic", expert_views["semantic"]),
            measure("default", "forensic", expert_views["forensic"], run.seconds)]
    backbones = _Backbones(encoder, store, feature_store)
    for name in variants:
        rows.append(_variant_row(name, run, recipe, training, validation, measure, backbones))
    return pd.DataFrame(rows).set_index(["variant", "expert"])


class _Measure:
    """Scores the validation views (each image, then its re-encoded copy) into a table row."""

    def __init__(self, validation: Split, rounds: int, seed: int) -> None:
        self.views, self.labels = train.with_reencoded(validation.images, validation.labels)
        self.raw = np.arange(len(self.views)) < len(validation.images)
        self.groups = None if validation.groups is None else np.concatenate([validation.groups, validation.groups])
        self.rounds, self.seed = rounds, seed

    def __call__(self, variant: str, expert: str, logits: np.ndarray, seconds: float | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"variant": variant, "expert": expert}
        for view, chosen in (("raw", self.raw), ("re-encoded", ~self.raw)):
            groups = None if self.groups is None else self.groups[chosen]
            auc, low, high = metrics.bootstrap(self.labels[chosen], logits[chosen], metrics.roc_auc, groups=groups,
                                               rounds=self.rounds, seed=self.seed)
            row.update({f"AUC {view}": auc, f"{view} low": low, f"{view} high": high})
        row["seconds"] = seconds
        return row


class _Backbones:
    """The encoder and feature store a semantic variant reads; other backbones are opened once, when first asked for."""

    def __init__(self, encoder: Any, store: Any, feature_store: Path | None) -> None:
        self.default, self.feature_store = (encoder, store), feature_store
        self.opened: dict[str, tuple[Any, Any]] = {}

    def __call__(self, backbone: str | None) -> tuple[Any, Any]:
        from aiornot.model import encoders

        if backbone is None:
            return self.default
        if backbone not in self.opened:
            opened = encoders.open_encoder(encoders.OFFLINE_BACKBONES[backbone]())
            store = encoders.FeatureStore(Path(self.feature_store) / opened.id) if self.feature_store else None
            self.opened[backbone] = (opened, store)
        return self.opened[backbone]


def _variant_row(name: str, run: train.TrainResult, recipe: train.DetectorRecipe, training: Split, validation: Split,
                 measure: _Measure, backbones: _Backbones) -> dict[str, Any]:
    """Fit (or rescore) one variant and measure it; seconds include the fit and the scoring."""
    from aiornot.detector import Detector

    started = time.perf_counter()
    if name in SEMANTIC_VARIANTS:
        variant = SEMANTIC_VARIANTS[name]
        keep = _kept_rows(training, variant.without_generators)
        encoder, store = backbones(variant.backbone)
        strata = None if training.strata is None else np.asarray(training.strata)[keep]
        expert = train.fit_semantic(lazy.take(training.images, keep), np.asarray(training.labels)[keep], strata,
                                    dataclasses.replace(recipe, **variant.change), store=store, encoder=encoder, progress=False)
        return measure(name, "semantic", expert.logits(measure.views), time.perf_counter() - started)
    if name == FOUR_CROPS:
        four = Detector(run.model, {"crop_size": recipe.forensic.crop_size, "crops_per_image": 4})
        return measure(name, "forensic", four.logits(measure.views), time.perf_counter() - started)
    config = dataclasses.replace(recipe.forensic, **FORENSIC_VARIANTS[name])
    variant_run = train.fit(training.images, training.labels, validation.images, validation.labels, config, train_strata=training.strata)
    scorer = Detector(variant_run.model, {"crop_size": recipe.forensic.crop_size, "max_tiles": recipe.max_tiles})
    return measure(name, "forensic", scorer.logits(measure.views), variant_run.seconds)


def _kept_rows(training: Split, without_generators: Sequence[str]) -> np.ndarray:
    """The training rows a variant keeps: all, or all but those of ``without_generators``."""
    if not without_generators:
        return np.ones(len(training.labels), bool)
    if training.generators is None:
        raise ValueError("this variant leaves out generators, but the training split names none (no `generator` column)")
    return ~np.isin(training.generators, list(without_generators))
