"""Training for both networks: data feeding, early stopping on validation AUC, history and curves.

The seed's CNN sees whole images resized to 256×256 (as the seed did); our detector sees random
native-resolution crops with blur/JPEG/rescale augmentation and class-balanced batches. Both read
their images one batch at a time, so a :class:`~aiornot.io.lazy.LazyImages` view trains in the memory
of a batch (:mod:`aiornot.training.feed` streams an :class:`~aiornot.io.stream.ImageTable` the same way).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm
from tqdm.keras import TqdmCallback

from aiornot.io import lazy, transforms
from aiornot.model.experts import fit_semantic_head


@dataclass
class TrainConfig:
    """Every knob of a training run (saved beside the model)."""

    model: str = "forensic_detector"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 2e-3
    crop_size: int = transforms.DETECTOR_CROP_SIZE
    image_size: int = 256  # seed_cnn only: the whole image is resized to this
    steps_per_epoch: int | None = None  # detector: default one crop per training image per epoch
    augment: bool = True
    # Within each class, draw equally from each content stratum (the sample's `portrait` flag), so
    # "a face" cannot stand in for "AI" when most AI images are faces and most real ones are not.
    balance_strata: bool = False
    patience: int = 6
    seed: int = 42
    model_options: dict = field(default_factory=dict)


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and Keras (whichever backend) for repeatable runs."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


class CropBatches(keras.utils.PyDataset):
    """Class-balanced batches of random native-resolution crops, augmented, as float32 RGB 0–255.

    Each batch draws half its crops from each class, so a 1:3 imbalance does not become a prior.
    With ``strata`` (e.g. portrait or not), each class's half is shared equally among the strata
    that class has, so content that is rare in one class (real portraits) is seen as often as the
    content that dominates it.
    """

    def __init__(self, images: Sequence[np.ndarray], labels: np.ndarray, config: TrainConfig, steps: int, seed: int,
                 strata: np.ndarray | None = None) -> None:
        super().__init__()
        self.images, self.labels, self.config, self.steps = images, np.asarray(labels), config, steps
        strata = np.zeros(len(self.labels), dtype=int) if strata is None else np.asarray(strata)
        # One list of pools per class; a pool is the rows of one stratum of that class.
        self.pools = [[rows for rows in (np.flatnonzero((self.labels == c) & (strata == s)) for s in np.unique(strata)) if len(rows)]
                      for c in (0, 1)]
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        half = self.config.batch_size // 2
        rows = np.concatenate([self._draw(pools, half, rng) for pools in self.pools])
        crops = [self._crop(self.images[row], rng) for row in rows]
        return np.stack(crops).astype(np.float32), self.labels[rows].astype(np.float32)[:, None]

    @staticmethod
    def _draw(pools: list[np.ndarray], count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` rows shared as evenly as possible among ``pools`` (with replacement)."""
        shares = np.full(len(pools), count // len(pools))
        shares[rng.permutation(len(pools))[: count % len(pools)]] += 1
        return np.concatenate([rng.choice(pool, share) for pool, share in zip(pools, shares)])

    def _crop(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = self.config.crop_size
        # Cut a generous window first so augmentation touches only what is needed (speed).
        window = transforms.random_crop(pixels, min(2 * size, max(pixels.shape[:2])), rng)
        if self.config.augment:
            window = transforms.augment(window, rng)
        crop = transforms.random_crop(window, size, rng)
        return crop[:, ::-1] if rng.random() < 0.5 else crop


class ResizedBatches(keras.utils.PyDataset):
    """The seed CNN's batches: whole images resized to ``size``², in [0, 1], resized a batch at a time.

    ``seed``: shuffle the order each epoch (training); ``None`` keeps it (validation). Only one
    batch is resized at once, so a dataset of any size trains in the memory of a batch.
    """

    def __init__(self, images: Sequence[np.ndarray], labels: np.ndarray, size: int, batch_size: int, *, seed: int | None) -> None:
        super().__init__()
        self.images, self.labels = images, np.asarray(labels, np.float32)[:, None]
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images for {len(self.labels)} labels")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self._order_epoch, self._order = 0, -1, np.arange(0)

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.labels) / self.batch_size))

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def order(self) -> np.ndarray:
        """This epoch's order of the images (drawn once per epoch, not once per batch)."""
        if self._order_epoch != self.epoch:
            count = len(self.labels)
            self._order = np.arange(count) if self.seed is None else np.random.default_rng((self.seed, self.epoch)).permutation(count)
            self._order_epoch = self.epoch
        return self._order

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order()[index * self.batch_size : (index + 1) * self.batch_size]
        return transforms.resized_images(lazy.take(self.images, rows), self.size), self.labels[rows]


def validation_crops(images: Sequence[np.ndarray], crop_size: int) -> np.ndarray:
    """One centred native-resolution crop per validation image (a cheap, fixed early-stopping set)."""
    return np.stack([transforms.crop_grid(p, crop_size, 1)[0] for p in images]).astype(np.float32)


@dataclass
class TrainResult:
    """A trained model with what it learnt from."""

    model: object
    history: pd.DataFrame
    config: TrainConfig
    seconds: float
    images_per_second: float
    best_epoch: int


def fit(
    train_images: Sequence[np.ndarray],
    train_labels: np.ndarray,
    val_images: Sequence[np.ndarray],
    val_labels: np.ndarray,
    config: TrainConfig,
    *,
    train_strata: np.ndarray | None = None,
    verbose: bool = True,
) -> TrainResult:
    """Train ``config.model`` with early stopping on validation AUC; returns the best weights.

    ``train_strata`` (one value per training image, e.g. the portrait flag) is used by the
    detector when ``config.balance_strata`` is set; see :class:`CropBatches`.
    """
    from aiornot.model import networks

    set_seeds(config.seed)
    model = networks.build(config.model, **config.model_options)
    is_seed = config.model == "seed_cnn"
    if is_seed:
        train_data = ResizedBatches(train_images, train_labels, config.image_size, config.batch_size, seed=config.seed)
        val_data = ResizedBatches(val_images, val_labels, config.image_size, config.batch_size, seed=None)
        loss, auc = keras.losses.BinaryCrossentropy(), keras.metrics.AUC(name="auc")
    else:
        steps = config.steps_per_epoch or max(1, math.ceil(len(train_images) / config.batch_size))
        if config.balance_strata and train_strata is None:
            raise ValueError("balance_strata is set but no train_strata were given")
        strata = train_strata if config.balance_strata else None
        train_data = CropBatches(train_images, np.asarray(train_labels), config, steps, config.seed, strata=strata)
        val_data = (validation_crops(val_images, config.crop_size), np.asarray(val_labels, np.float32)[:, None])
        loss, auc = keras.losses.BinaryCrossentropy(from_logits=True), keras.metrics.AUC(name="auc", from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=[auc])
    callbacks = training_callbacks(config, verbose=verbose)
    started = time.perf_counter()
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks, verbose=0)
    seen = len(train_images) if is_seed else len(train_data) * config.batch_size
    seconds = time.perf_counter() - started
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    best = int(frame["val_auc"].idxmax())
    return TrainResult(model, frame, config, seconds, seen * len(frame) / max(seconds, 1e-9), best)


def training_callbacks(config: TrainConfig, *, verbose: bool = True) -> list:
    """The callbacks every fit uses (in memory and streamed): early stopping on validation AUC with the best
    weights restored, a learning-rate halving on a validation-loss plateau, and the epoch bar (made last, right
    before ``fit``, because the bar starts when it is made)."""
    return [
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, config.patience // 2)),
        epoch_progress(config.epochs, verbose=verbose),
    ]


def epoch_progress(epochs: int, *, verbose: bool = True) -> TqdmCallback:
    """One tqdm bar over epochs with the latest logs (loss, AUC, validation), instead of Keras' per-step log.

    Create it right before ``fit``: the bar starts when it is made. ``verbose=0`` is tqdm's epoch-only
    mode (no per-batch bar, no per-batch hook), and the plain text bar is kept in notebooks too.
    """
    return TqdmCallback(epochs=epochs, verbose=0, tqdm_class=tqdm, desc="training", disable=not verbose)


def save_run(result: TrainResult, out_dir: str | Path, *, name: str) -> dict[str, Path]:
    """Save the model (``NAME.keras``), its history CSV, its config JSON and its curves PNG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": out / f"{name}.keras",
        "history": out / f"{name}_history.csv",
        "config": out / f"{name}_config.json",
        "curves": out / f"{name}_curves.png",
    }
    result.model.save(paths["model"])
    result.history.to_csv(paths["history"])
    summary = {"config": asdict(result.config), "seconds": round(result.seconds, 1),
               "images_per_second": round(result.images_per_second, 2), "best_epoch": result.best_epoch,
               "epochs_run": len(result.history)}
    paths["config"].write_text(json.dumps(summary, indent=2))
    plot_curves(result.history, title=name).savefig(paths["curves"], dpi=110, bbox_inches="tight")
    return paths


def plot_curves(history: pd.DataFrame, title: str = ""):
    """Loss and AUC per epoch, training and validation side by side."""
    import matplotlib.pyplot as plt

    figure, (loss_axis, auc_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    for axis, metric in ((loss_axis, "loss"), (auc_axis, "auc")):
        axis.plot(history.index, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(history.index, history[f"val_{metric}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric.upper() if metric == "auc" else metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


# ------------------------------------------------------------------- the two-expert detector
@dataclass
class DetectorRecipe:
    """How the default detector is made from a training and a validation split (saved with it).

    The forensic CNN is trained as :class:`TrainConfig` says. The semantic head is fitted on frozen
    encoder features of the training images; with ``reencoded_views`` it also sees each image's
    re-encoded copy (centre square, 384 px, JPEG q90), so recompression is learnt rather than
    feared. With ``lowres_views`` it also trains on each image brought down to a ``lowres_side`` px short side (128)
    and re-encoded (:func:`~aiornot.io.transforms.low_resolution_like_upload`), a training view only, never scored,
    calibrated on or counted in a threshold. With ``balance_portraits`` each (class, portrait) cell weighs the same, so "a face"
    cannot stand in for "AI". Calibration, fusion and thresholds are fitted out of source: on
    cross-fitted predictions for the training and validation images, each from experts refitted
    without its curation (:mod:`aiornot.training.out_of_source`), or on validation when the data name no
    curations.
    """

    forensic: TrainConfig = field(default_factory=TrainConfig)
    semantic_feature: str = "embeds"
    semantic_C: float = 0.05
    balance_portraits: bool = True
    reencoded_views: bool = True
    #: Issue 17: in the sample nearly every small, soft picture is real, and the head learnt "small and soft = real"
    #: (the DCGAN faces held out ranked below the real headshots). This view shows that look in both classes.
    lowres_views: bool = False
    #: The short side of that view in px, recorded so that a saved model names the side it trained with.
    lowres_side: int = transforms.LOW_RES_SIDE
    max_tiles: int = transforms.DETECTOR_MAX_TILES
    target_fpr: float = 0.05
    #: Curation folds of the cross-fitting (whole source packages held out at a time). Five, not three: one
    #: curation then weighs a fifth of the pool and each cross-fitted head is closer to the final one (issue 17:
    #: the cross-curation pairs' mean AUC in `make reports` went 0.679 → 0.746, at about the same cost per fold).
    source_folds: int = 5
    #: An expert below this out-of-source ROC AUC gets fusion weight 0.
    fusion_min_auc: float = 0.6
    #: The experts that may enter the fusion (a leave-out fold reuses the shipped model's choice).
    fusion_experts: tuple[str, ...] = ("semantic", "forensic")
    #: The expert that decides alone when no expert reaches ``fusion_min_auc`` (see out_of_source.fallback_expert).
    fusion_fallback: str = "semantic"
    #: The ``ai`` threshold also lets at most this share of any one real curation through ...
    max_source_fpr: float = 0.10
    #: ... when that curation has at least this many real views in the pool.
    min_source_views: int = 20
    #: Epochs of each cross-fitted forensic CNN (None: a third of ``forensic.epochs``); only run
    #: while the forensic expert may enter the fusion.
    cross_fit_forensic_epochs: int | None = None


def with_reencoded(images: Sequence[np.ndarray], *arrays: np.ndarray, enabled: bool = True,
                   copies: Sequence[np.ndarray] | None = None) -> tuple:
    """``images`` followed by their re-encoded copies, and each array repeated to match.

    ``copies``: the re-encoded copies when the caller already has them (the leave-out protocol
    re-encodes every image once, not once per fold). A :class:`~aiornot.io.lazy.LazyImages` stays lazy: the
    result is a view (images, then their copies, re-encoded when read), nothing is decoded now.
    """
    is_lazy = isinstance(images, lazy.LazyImages)
    if not enabled:
        return (images if is_lazy else list(images), *[np.asarray(a) for a in arrays])
    if copies is None:
        copies = lazy.mapped(images, transforms.reencode_like_upload)
    elif len(copies) != len(images):
        raise ValueError(f"{len(copies)} re-encoded copies for {len(images)} images")
    views = lazy.chain(images, copies) if is_lazy else list(images) + list(copies)
    return (views, *[np.concatenate([np.asarray(a), np.asarray(a)]) for a in arrays])


def lowres_view(recipe: DetectorRecipe) -> Callable[[np.ndarray], np.ndarray]:
    """The recipe's low-resolution training view of one image (its ``lowres_side``, then re-encoded)."""
    return functools.partial(transforms.low_resolution_like_upload, side=recipe.lowres_side)


def semantic_training_views(images: Sequence[np.ndarray], *arrays: np.ndarray, recipe: DetectorRecipe,
                            reencoded: Sequence[np.ndarray] | None = None) -> tuple:
    """What the semantic head trains on, as the recipe says: the images, then their re-encoded copies (given or
    made) and their low-resolution copies, with each array repeated to match. Lazy images stay lazy."""
    views = with_reencoded(images, *arrays, enabled=recipe.reencoded_views, copies=reencoded)
    if not recipe.lowres_views:
        return views
    low = lazy.mapped(images, lowres_view(recipe))
    joined = lazy.chain(views[0], low) if isinstance(views[0], lazy.LazyImages) else list(views[0]) + list(low)
    return (joined, *[np.concatenate([view_array, np.asarray(array)]) for view_array, array in zip(views[1:], arrays)])


def fit_semantic(images: Sequence[np.ndarray], labels: np.ndarray, strata: np.ndarray | None, recipe: DetectorRecipe,
                 *, store=None, encoder=None, progress: bool = True, reencoded: Sequence[np.ndarray] | None = None):
    """The semantic expert's head, fitted on the training images and, as the recipe says, their re-encoded copies
    (given or made) and low-resolution copies (:func:`semantic_training_views`)."""
    from aiornot.model import encoders
    from aiornot.model.experts import SemanticExpert

    encoder = encoder or encoders.OnnxImageEncoder()
    views, view_labels, view_strata = semantic_training_views(images, labels, np.zeros(len(labels)) if strata is None else strata,
                                                              recipe=recipe, reencoded=reencoded)
    features = encoders.embed_with_store(encoder, views, store, kind=recipe.semantic_feature, progress=progress,
                                         description="semantic features")
    head = fit_semantic_head(features, view_labels, view_strata, recipe)
    return SemanticExpert(head, feature=recipe.semantic_feature, encoder=encoder, store=store, encoder_id=encoder.id)


def fit_detector(
    train_images: Sequence[np.ndarray], train_labels: np.ndarray, train_strata: np.ndarray | None,
    val_images: Sequence[np.ndarray], val_labels: np.ndarray, recipe: DetectorRecipe,
    *, name: str = "aiornot-detector", store=None, encoder=None, semantic: bool = True, verbose: bool = True,
    train_reencoded: Sequence[np.ndarray] | None = None, val_reencoded: Sequence[np.ndarray] | None = None,
    train_curations: np.ndarray | None = None, val_curations: np.ndarray | None = None, val_strata: np.ndarray | None = None,
    train_groups: np.ndarray | None = None, val_groups: np.ndarray | None = None,
):
    """Train both experts, then calibrate them, fit the fusion rule and choose the thresholds.

    With ``train_curations`` and ``val_curations`` (each image's source package, see
    :func:`aiornot.training.out_of_source.curations`) these are fitted **out of source**, on cross-fitted
    leave-curation-out predictions for every training and validation view, and
    ``detector.config["out_of_source"]`` records what they decided; without them, on validation.
    Returns ``(detector, forensic TrainResult)``. ``semantic=False`` gives the forensic expert alone.
    ``train_reencoded`` / ``val_reencoded``: the images' re-encoded copies, if already made.
    ``train_groups`` / ``val_groups``: each image's source group (``source``: the photo it shows or was made from); a
    cross-fitting fold then also leaves out every image that shares a group with it.
    """
    from aiornot.detector import Detector

    from aiornot.training.out_of_source import decide

    run = fit(train_images, train_labels, val_images, val_labels, recipe.forensic, train_strata=train_strata, verbose=verbose)
    detector = Detector(run.model, {"name": name, "crop_size": recipe.forensic.crop_size, "max_tiles": recipe.max_tiles})
    if train_curations is None or val_curations is None:
        if semantic:
            detector.semantic = fit_semantic(train_images, train_labels, train_strata, recipe, store=store, encoder=encoder,
                                             progress=verbose, reencoded=train_reencoded)
        views, view_labels = with_reencoded(val_images, val_labels, enabled=recipe.reencoded_views, copies=val_reencoded)
        detector.calibrate(views, view_labels, target_fpr=recipe.target_fpr)
        return detector, run
    pool = TrainingPool.of(train_images, train_labels, train_strata, train_curations, val_images, val_labels, val_strata,
                           val_curations, train_reencoded, val_reencoded, train_groups, val_groups)
    views, extra = pool.views(recipe), pool.training_only_views(recipe)
    features = extra_features = None
    if semantic:
        # One encoding pass over every view serves both the shipped head (training views) and the cross-fitted heads.
        from aiornot.model import encoders
        from aiornot.model.experts import SemanticExpert

        encoder = encoder or encoders.OnnxImageEncoder()
        features = encoders.embed_with_store(encoder, views.images, store, kind=recipe.semantic_feature, progress=verbose,
                                             description="semantic features")
        trained = ~views.is_validation
        train_x, train_y, train_strata = features[trained], views.labels[trained], views.strata[trained]
        if extra is not None:
            extra_features = encoders.embed_with_store(encoder, extra.images, store, kind=recipe.semantic_feature,
                                                       progress=verbose, description="low-resolution views")
            kept = ~extra.is_validation
            train_x = np.concatenate([train_x, extra_features[kept]])
            train_y, train_strata = np.concatenate([train_y, extra.labels[kept]]), np.concatenate([train_strata, extra.strata[kept]])
        head = fit_semantic_head(train_x, train_y, train_strata, recipe)
        detector.semantic = SemanticExpert(head, feature=recipe.semantic_feature, encoder=encoder, store=store, encoder_id=encoder.id)
    scores = cross_fitted_scores(pool, views, features, detector, recipe, verbose=verbose, extra=extra, extra_features=extra_features)
    detector.config["out_of_source"] = decide(detector, scores, recipe).model_dump()
    return detector, run


@dataclass
class TrainingPool:
    """The training and validation images together, for cross-fitting: one row per image."""

    images: Sequence[np.ndarray]
    reencoded: Sequence[np.ndarray] | None
    labels: np.ndarray
    strata: np.ndarray
    curations: np.ndarray
    is_validation: np.ndarray
    groups: np.ndarray | None = None  # each image's source group; None: unknown (every image its own)

    @classmethod
    def of(cls, train_images, train_labels, train_strata, train_curations, val_images, val_labels, val_strata, val_curations,
           train_reencoded=None, val_reencoded=None, train_groups=None, val_groups=None) -> "TrainingPool":
        def joined(first, second):
            if first is None or second is None:
                return None
            if isinstance(first, lazy.LazyImages) and isinstance(second, lazy.LazyImages):
                return lazy.chain(first, second)
            return list(first) + list(second)

        zeros = lambda count: np.zeros(count, dtype=int)  # noqa: E731 — no strata given: one stratum
        return cls(joined(train_images, val_images), joined(train_reencoded, val_reencoded),
                   np.concatenate([np.asarray(train_labels), np.asarray(val_labels)]),
                   np.concatenate([zeros(len(train_labels)) if train_strata is None else np.asarray(train_strata),
                                   zeros(len(val_labels)) if val_strata is None else np.asarray(val_strata)]),
                   np.concatenate([np.asarray(train_curations, dtype=object), np.asarray(val_curations, dtype=object)]),
                   np.concatenate([np.zeros(len(train_labels), bool), np.ones(len(val_labels), bool)]),
                   None if train_groups is None or val_groups is None
                   else np.concatenate([np.asarray(train_groups, dtype=object), np.asarray(val_groups, dtype=object)]))

    def views(self, recipe: DetectorRecipe) -> "PoolViews":
        """The pool's images and, as the recipe says, their re-encoded copies, with each view's facts."""
        images, labels, strata, curations, rows = with_reencoded(self.images, self.labels, self.strata, self.curations,
                                                                 np.arange(len(self.labels)), enabled=recipe.reencoded_views,
                                                                 copies=self.reencoded)
        return PoolViews(images, labels, strata, curations, rows, self.is_validation[rows])

    def training_only_views(self, recipe: DetectorRecipe) -> "PoolViews | None":
        """The semantic heads' training-only views of the pool (its low-resolution copies), or None when the recipe
        has none. They train the shipped head and every cross-fitted head; they are never scored or calibrated on."""
        if not recipe.lowres_views:
            return None
        rows = np.arange(len(self.labels))
        return PoolViews(lazy.mapped(self.images, lowres_view(recipe)), self.labels, self.strata,
                         self.curations, rows, self.is_validation)


@dataclass
class PoolViews:
    """Every view of a :class:`TrainingPool` (its images, then their re-encoded copies), one row per view."""

    images: Sequence[np.ndarray]
    labels: np.ndarray
    strata: np.ndarray
    curations: np.ndarray
    rows: np.ndarray  # the pool row each view shows
    is_validation: np.ndarray


def cross_fitted_scores(pool: TrainingPool, views: PoolViews, features: np.ndarray | None, detector, recipe: DetectorRecipe,
                        *, verbose: bool = True, extra: PoolViews | None = None, extra_features: np.ndarray | None = None):
    """Every expert's logits for every view of the pool, each from the expert refitted without the view's curation.

    ``features``: the semantic encoder's features of every view (None: no semantic expert). ``extra`` and
    ``extra_features``: training-only views (:meth:`TrainingPool.training_only_views`) that join each
    cross-fitted semantic head's training rows, as they joined the shipped head's, and are never scored.
    """
    from aiornot.training import out_of_source

    folds = out_of_source.curation_folds(pool.curations, pool.labels, recipe.source_folds)
    training = out_of_source.fold_training_masks(folds, pool.groups)
    view_folds = [mask[views.rows] for mask in folds]
    logits = {}
    if features is not None:
        logits["semantic"] = _cross_fitted_semantic(views, features, extra, extra_features, view_folds, training, recipe)
    if "forensic" in recipe.fusion_experts:  # else kept out by the recipe: shown with weight 0, never cross-fitted
        logits["forensic"] = forensic_logits(pool, views.images, view_folds, folds, detector, recipe, verbose=verbose,
                                             training=training)
    return out_of_source.OutOfSourceScores(logits, views.labels, views.curations, len(folds), view_folds=view_folds)


def _cross_fitted_semantic(views: PoolViews, features: np.ndarray, extra: PoolViews | None, extra_features: np.ndarray | None,
                           view_folds: list[np.ndarray], training: list[np.ndarray], recipe: DetectorRecipe) -> np.ndarray:
    """The semantic logits of every scored view, each from a head refitted without the view's curation fold; the
    training-only views train those heads (those of the fold's usable rows) and are never held out."""
    from aiornot.training import out_of_source

    train_masks = [mask[views.rows] for mask in training]
    if extra is None:
        return out_of_source.semantic_logits(features, views.labels, views.strata, view_folds, recipe, train_masks)
    never_held = np.zeros(len(extra.labels), bool)
    logits = out_of_source.semantic_logits(
        np.concatenate([features, extra_features]), np.concatenate([views.labels, extra.labels]),
        np.concatenate([views.strata, extra.strata]), [np.concatenate([held, never_held]) for held in view_folds], recipe,
        [np.concatenate([usable, mask[extra.rows]]) for usable, mask in zip(train_masks, training)])
    return logits[: len(views.labels)]


def forensic_logits(pool: TrainingPool, views, view_folds: list[np.ndarray], folds: list[np.ndarray], detector,
                    recipe: DetectorRecipe, *, verbose: bool = True, training: list[np.ndarray] | None = None) -> np.ndarray:
    """Cross-fitted forensic logits: the CNN retrained without each curation fold scores that fold's views.

    ``training``: the pool rows each fold's CNN may use (:func:`aiornot.training.out_of_source.fold_training_masks`);
    None: every row outside the fold. Early stopping reads the fold's remaining validation images, never the fold itself.
    """
    from aiornot.detector import Detector
    from aiornot.training import out_of_source

    epochs = recipe.cross_fit_forensic_epochs or max(1, recipe.forensic.epochs // 3)
    config = dataclasses.replace(recipe.forensic, epochs=epochs)
    logits = np.full(len(view_folds[0]), np.nan)
    training = training or out_of_source.fold_training_masks(folds, None)
    for index, (held, held_views, usable) in enumerate(zip(folds, view_folds, training), start=1):
        train_rows, val_rows = np.flatnonzero(usable & ~pool.is_validation), np.flatnonzero(usable & pool.is_validation)
        if len(np.unique(pool.labels[val_rows])) < 2:  # no usable early-stopping set: stop on the training rows
            val_rows = train_rows
        run = fit(lazy.take(pool.images, train_rows), pool.labels[train_rows], lazy.take(pool.images, val_rows),
                  pool.labels[val_rows], config, train_strata=pool.strata[train_rows], verbose=False)
        scorer = Detector(run.model, {"name": f"forensic without fold {index}", "crop_size": detector.crop_size,
                                      "max_tiles": detector.max_tiles})
        logits[held_views] = scorer.logits(lazy.take(views, np.flatnonzero(held_views)))
        if verbose:
            print(f"cross-fitted forensic CNN {index}/{len(folds)}: {int(held.sum())} images held out", file=sys.stderr)
    return logits
