"""Experiment (issue 17, item 2), run by hand after `make reports` (it reads build/full/splits.csv):

    python tools/experiments/aligned_fakes.py [--epochs 6 --steps 20] [fold-name-substring ...]

Does the forensic CNN read generator traces rather than content when it also trains on *content-aligned fakes*?

Result (2026-12-03, reports/experiments/aligned_fakes.csv; two folds, run beside `make reports`, then stopped): **no**.
At the leave-out folds' budget (6 epochs of 20 batches) the aligned fakes made the forensic CNN worse on the
re-encoded view of both folds measured — StyleGAN2 held out 0.853 → 0.808 (traces alone 0.766), dcgan-digiface +
nba-headshots 0.996 → 0.677, and traces alone ran the wrong way there (0.129): what separates a photo from its
re-rendering by these simulators (their slight blur: 7–8 grey levels mean absolute error) does not survive 384 px
JPEG and points the wrong way on real headshots. Two folds are too few to rule the idea out, not too few to stop
building it into the recipe. Not tried: a sharper simulator (adversarial or perceptual loss), a larger budget.

A generator simulator in the line of AutoGAN (Zhang, Karaman, Chang, WIFS 2019): a small auto-encoder trained on the
fold's real training photos only, whose decoder up-samples as generators do (transposed convolutions, or nearest /
bilinear up-sampling followed by a convolution). Its reconstruction of a real window has the window's content and the
decoder's traces, so a CNN shown the pair (same augmentation, same crop) can only tell them apart by the traces.

For each held-out fold (the cross-curation pairs by default, and the StyleGAN2 generator), trained without the fold:

  baseline   the forensic CNN as each leave-out fold of notebook 03 trains it (same budget, same crops)
  aligned    half of each batch as the baseline's, half real windows beside their simulated re-renderings
  traces     only real windows and their re-renderings (no AI image at all): what the traces alone carry

and each is scored on the held-out images as the detector scores them (mean logit of up to 64 native tiles), raw and
re-encoded (centre square, 384 px, JPEG q90). Output: reports/experiments/aligned_fakes.csv.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import layers

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import metrics, protocol
from aiornot.io import datasets, lazy, transforms
from aiornot.training import train
from report_sample import report_views

WINDOW = 128  # real windows the simulator re-renders; training crops are cut from them after augmentation
SIMULATOR_KINDS = ("transposed", "nearest", "bilinear")


def simulator(kind: str) -> keras.Model:
    """An auto-encoder (1/4 resolution, 96 channels: enough to reconstruct, so the traces differ, not the content)."""
    inputs = keras.Input((None, None, 3))
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for width in (48, 96):
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    for _ in range(2):
        x = layers.Add()([x, layers.Conv2D(96, 3, padding="same", activation="relu")(x)])
    for width in (64, 32):
        if kind == "transposed":
            x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", activation="relu")(x)
        else:
            x = layers.UpSampling2D(2, interpolation=kind)(x)
            x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    outputs = layers.Rescaling(127.5, offset=127.5)(x)
    return keras.Model(inputs, outputs, name=f"simulator_{kind}")


def real_windows(images, rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random WINDOW² windows of the real training images (padded where an image is smaller)."""
    picks = rng.choice(rows, count)
    return np.stack([transforms.random_crop(transforms.pad_to(images[row], WINDOW), WINDOW, rng) for row in picks]).astype(np.float32)


def aligned_pool(images, real_rows: np.ndarray, count: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real windows and their re-renderings by simulators trained on other windows of the same real photos."""
    rng = np.random.default_rng(seed)
    reals, fakes = [], []
    for index, kind in enumerate(SIMULATOR_KINDS):
        model = simulator(kind)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
        fit_windows = real_windows(images, real_rows, 2048, rng)[:, :64, :64]  # smaller crops: faster steps
        model.fit(fit_windows, fit_windows, batch_size=32, epochs=max(1, steps * 32 // len(fit_windows)), verbose=0)
        windows = real_windows(images, real_rows, count // len(SIMULATOR_KINDS), rng)
        rendered = np.clip(np.round(model.predict(windows, batch_size=32, verbose=0)), 0, 255)
        print(f"  simulator {kind}: mean absolute error {np.abs(rendered - windows).mean():.2f} grey levels", file=sys.stderr)
        reals.append(windows.astype(np.uint8))
        fakes.append(rendered.astype(np.uint8))
    return np.concatenate(reals), np.concatenate(fakes)


class AlignedBatches(keras.utils.PyDataset):
    """Batches whose first part is the baseline's (``base``, may be None) and the rest real/re-rendered pairs."""

    def __init__(self, base: train.CropBatches | None, reals: np.ndarray, fakes: np.ndarray, *, pairs: int, crop: int, steps: int,
                 seed: int) -> None:
        super().__init__()
        self.base, self.reals, self.fakes, self.pairs, self.crop, self.seed = base, reals, fakes, pairs, crop, seed
        self.steps = steps
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.base is not None:
            self.base.on_epoch_end()

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, self.epoch, index, 7))
        crops, labels = [], []
        for row in rng.choice(len(self.reals), self.pairs):
            state = rng.integers(1 << 31)  # the same augmentation and crop on both sides of the pair
            for pixels, label in ((self.reals[row], 0.0), (self.fakes[row], 1.0)):
                crops.append(self._augmented_crop(pixels, np.random.default_rng(state)))
                labels.append(label)
        batch, targets = np.stack(crops).astype(np.float32), np.array(labels, np.float32)[:, None]
        if self.base is not None:
            base_batch, base_targets = self.base[index]
            batch, targets = np.concatenate([base_batch, batch]), np.concatenate([base_targets, targets])
        return batch, targets

    def _augmented_crop(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        window = transforms.augment(pixels, rng)
        crop = transforms.random_crop(transforms.pad_to(window, self.crop), self.crop, rng)
        return crop[:, ::-1] if rng.random() < 0.5 else crop


def fit_variant(variant: str, images, labels, strata, train_rows, val_rows, config: train.TrainConfig, pool) -> keras.Model:
    """The forensic CNN of one variant, early-stopped on the fold's remaining validation images."""
    from aiornot.model import networks

    train.set_seeds(config.seed)

    model = networks.build(config.model, **config.model_options)
    steps = config.steps_per_epoch or max(1, len(train_rows) // config.batch_size)
    half = dataclasses.replace(config, batch_size=config.batch_size // 2)
    base_config = config if variant == "baseline" else half
    base = None if variant == "traces" else train.CropBatches(lazy.take(images, train_rows), labels[train_rows], base_config, steps, config.seed,
                                                              strata=strata[train_rows] if config.balance_strata else None)
    data = base if variant == "baseline" else AlignedBatches(base, *pool, pairs=config.batch_size // 4 if base else config.batch_size // 2,
                                                               crop=config.crop_size, steps=steps, seed=config.seed)
    val = (train.validation_crops(lazy.take(images, val_rows), config.crop_size), labels[val_rows].astype(np.float32)[:, None])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.AUC(name="auc", from_logits=True)])
    model.fit(data, validation_data=val, epochs=config.epochs, callbacks=train.training_callbacks(config, verbose=False), verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folds", nargs="*", help="substrings of the fold names to run (default: every pair and stylegan2)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variants", default="baseline,aligned,traces")
    parser.add_argument("--simulator-steps", type=int, default=400, help="training steps of each simulator (batches of 32)")
    parser.add_argument("--pool", type=int, default=1536, help="aligned real/re-rendered windows per fold")
    parser.add_argument("--out", default=str(ROOT / "reports/experiments/aligned_fakes.csv"))
    args = parser.parse_args()

    frame, pixels, reencoded = report_views()
    labels, strata = frame["label"].to_numpy(), datasets.content_strata(frame)
    groups = protocol.held_out_groups(frame, min_images=5, min_real_images=20)
    wanted = args.folds or ["pair:", "generator: stylegan2"]
    groups = [g for g in groups if any(w in g.name for w in wanted)]
    config = train.TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps)
    rows_out = []
    for held in groups:
        started = time.time()
        rows = protocol.fold_rows(frame, held)
        train_rows, val_rows, test = (np.flatnonzero(rows[k]) for k in ("train", "validation", "test"))
        real_train = train_rows[labels[train_rows] == 0]
        variants = args.variants.split(",")
        pool = aligned_pool(pixels, real_train, args.pool, steps=args.simulator_steps, seed=42) if set(variants) - {"baseline"} else None
        for variant in variants:
            model = fit_variant(variant, pixels, labels, strata, train_rows, val_rows, config, pool)
            scorer = Detector(model, {"name": variant, "crop_size": config.crop_size, "max_tiles": transforms.DETECTOR_MAX_TILES})
            for view, images in (("raw", pixels), ("re-encoded", reencoded)):
                logits = scorer.logits(lazy.take(images, test))
                rows_out.append({"held out": held.name, "variant": variant, "view": view, "AI": int(labels[test].sum()),
                                 "real": int((labels[test] == 0).sum()), "ROC AUC": metrics.roc_auc(labels[test], logits),
                                 "TPR @ 5% FPR": metrics.tpr_at_fpr(labels[test], logits, 0.05)})
                print(rows_out[-1], flush=True)
        print(f"{held.name}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        table = pd.DataFrame(rows_out)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    if rows_out:
        print(table.pivot_table(index="variant", columns="view", values="ROC AUC", aggfunc="mean").round(3))


if __name__ == "__main__":
    main()
