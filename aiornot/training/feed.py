"""Keras input pipelines that stream a dataset from disk: decode and crop in workers, never all at once.

:func:`aiornot.training.train.fit` takes a sequence of images (a list, or the notebooks' lazy views) and reads
it a batch at a time in the training process. The :class:`keras.utils.PyDataset` classes here read
an :class:`~aiornot.io.stream.ImageTable` a batch at a time too, decoding through the one safe
decoder in Keras' worker threads (``workers``) or processes (``use_multiprocessing``):

* :class:`WholeImages` — the seed CNN's input: the whole image resized to ``image_size``², in [0, 1];
* :class:`StreamingCrops` — the forensic CNN's input: class-balanced random native-resolution crops,
  augmented exactly as :class:`aiornot.training.train.CropBatches` does (it is its subclass);
* :class:`CentreCrops` — one centred crop per image, the forensic CNN's validation set.

Shuffling is windowed: each epoch the storage units (Parquet row groups) are shuffled, rows are
shuffled within windows of about ``window_rows`` rows, and each batch draws from one window, so a
batch reads a few row groups rather than one per image. Memory holds one batch per worker plus the
table's row-group cache. Nothing here uses ``tf.*``: it runs under the JAX and TensorFlow backends.

:func:`fit_stream` trains either model this way and returns the same
:class:`~aiornot.training.train.TrainResult` as :func:`aiornot.training.train.fit`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Sequence

import keras
import numpy as np
import pandas as pd

from aiornot.io import transforms
from aiornot.io.datasets import DatasetError
from aiornot.io.stream import ImageTable, Skipped, decode_rows
from aiornot.training.train import CropBatches, TrainConfig, TrainResult, set_seeds, training_callbacks

#: Rows per shuffling window (a few Parquet row groups of the Hugging Face layout).
DEFAULT_WINDOW_ROWS = 1024
#: Extra draws tried to replace unreadable images before a batch is given up.
REPLACEMENT_TRIES = 4


def default_workers() -> int:
    """Decoding workers: one per CPU this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


class _TableFeed:
    """What the three feeds share: a table, its rows, windowed shuffling and reported decoding."""

    def _setup(self, table: ImageTable, rows: Sequence[int], batch_size: int, seed: int, window_rows: int) -> None:
        self.table, self.rows = table, np.asarray(rows, dtype=np.int64)
        if not len(self.rows):
            raise DatasetError("no rows to feed: the split is empty")
        labels = table.labels["label"].to_numpy()[self.rows]
        if (labels < 0).any():
            raise DatasetError(f"{int((labels < 0).sum())} rows have no label; training needs labelled rows")
        self.batch_size, self.seed, self.window_rows = batch_size, seed, window_rows
        self.epoch = 0
        self.skipped: dict[str, Skipped] = {}
        self._windows_epoch, self._windows = -1, []

    def windows(self) -> list[np.ndarray]:
        """This epoch's windows: whole storage units, shuffled, each about ``window_rows`` rows."""
        if self._windows_epoch != self.epoch:
            rng = np.random.default_rng((self.seed, self.epoch))
            units = self.table.units[self.rows]
            by_unit = np.argsort(units, kind="stable")
            starts = np.flatnonzero(np.diff(units[by_unit], prepend=-1))
            groups = np.split(self.rows[by_unit], starts[1:])
            windows, current = [], []
            for unit in rng.permutation(len(groups)):
                current.extend(groups[unit])
                if len(current) >= self.window_rows:
                    windows.append(rng.permutation(current))
                    current = []
            if current:
                windows.append(rng.permutation(current))
            self._windows_epoch, self._windows = self.epoch, windows
        return self._windows

    def decode(self, rows: np.ndarray, rng: np.random.Generator, pool: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Decode ``rows``; an unreadable image is reported once and replaced by another row of ``pool``."""
        batch = decode_rows(self.table, rows)
        images, labels = list(batch.images), list(batch.labels)
        for _ in range(REPLACEMENT_TRIES):
            self._report(batch.skipped)
            missing = len(rows) - len(images)
            if not missing:
                break
            batch = decode_rows(self.table, rng.choice(pool, missing))
            images += batch.images
            labels += list(batch.labels)
        if len(images) < len(rows):
            raise DatasetError(f"could not decode a batch: {len(self.skipped)} unreadable images so far; "
                               "run aiornot.io.stream.decode_batches over the data to list them and remove them")
        return images, np.asarray(labels, np.float32)[:, None]

    def _report(self, skipped: list[Skipped]) -> None:
        for item in skipped:
            if item.id not in self.skipped:
                self.skipped[item.id] = item
                print(f"skipped {item.id}: {item.code} ({item.reason})", file=sys.stderr)

    def on_epoch_end(self) -> None:
        self.epoch += 1


class WholeImages(_TableFeed, keras.utils.PyDataset):
    """The seed CNN's batches: whole images resized to ``image_size``², float32 in [0, 1].

    ``shuffle=False`` keeps the rows' order (validation); ``steps`` caps the batches per epoch.
    """

    def __init__(self, table: ImageTable, rows: Sequence[int], *, image_size: int = 256, batch_size: int = 32,
                 shuffle: bool = True, steps: int | None = None, seed: int = 42, window_rows: int = DEFAULT_WINDOW_ROWS,
                 workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 8) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self._setup(table, rows, batch_size, seed, window_rows)
        self.image_size, self.shuffle = image_size, shuffle
        full = math.ceil(len(self.rows) / batch_size)
        self.steps = min(full, steps) if steps else full

    def __len__(self) -> int:
        return self.steps

    def batch_rows(self, index: int) -> np.ndarray:
        order = np.concatenate(self.windows()) if self.shuffle else self.rows
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        images, labels = self.decode(rows, np.random.default_rng((self.seed, self.epoch, index)), self.rows)
        return transforms.resized_images(images, self.image_size), labels


class StreamingCrops(_TableFeed, CropBatches):
    """The forensic CNN's batches: half of each class, random native-resolution crops, augmented.

    The crops and augmentation are :class:`aiornot.training.train.CropBatches`' own; only where the pixels
    come from differs: each batch decodes its images from one shuffling window.
    """

    def __init__(self, table: ImageTable, rows: Sequence[int], config: TrainConfig, *, steps: int | None = None,
                 seed: int | None = None, window_rows: int = DEFAULT_WINDOW_ROWS, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 8) -> None:
        keras.utils.PyDataset.__init__(self, workers=workers, use_multiprocessing=use_multiprocessing,
                                       max_queue_size=max_queue_size)
        self.config = config
        self._setup(table, rows, config.batch_size, config.seed if seed is None else seed, window_rows)
        labels = table.labels["label"].to_numpy()[self.rows]
        if len(np.unique(labels)) < 2:
            raise DatasetError("class-balanced crops need both classes in the training rows")
        self.class_rows = [self.rows[labels == c] for c in (0, 1)]
        self.steps = steps or max(1, math.ceil(len(self.rows) / config.batch_size))

    def batch_rows(self, index: int, rng: np.random.Generator) -> np.ndarray:
        window = self.windows()[index % len(self.windows())]
        in_window = np.isin(self.class_rows[0], window), np.isin(self.class_rows[1], window)
        pools = [rows[mask] if mask.any() else rows for rows, mask in zip(self.class_rows, in_window)]
        half = self.config.batch_size // 2
        return np.concatenate([self._draw([pool], half, rng) for pool in pools])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        rows = self.batch_rows(index, rng)
        half = len(rows) // 2
        real, real_labels = self.decode(rows[:half], rng, self.class_rows[0])
        fake, fake_labels = self.decode(rows[half:], rng, self.class_rows[1])
        crops = [self._crop(pixels, rng) for pixels in real + fake]
        return np.stack(crops).astype(np.float32), np.concatenate([real_labels, fake_labels])


class CentreCrops(_TableFeed, keras.utils.PyDataset):
    """One centred native-resolution crop per image, in row order (the forensic CNN's validation set)."""

    def __init__(self, table: ImageTable, rows: Sequence[int], *, crop_size: int = 64, batch_size: int = 64,
                 steps: int | None = None, workers: int = 1, use_multiprocessing: bool = False) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing)
        self._setup(table, rows, batch_size, 0, DEFAULT_WINDOW_ROWS)
        self.crop_size = crop_size
        full = math.ceil(len(self.rows) / batch_size)
        self.steps = min(full, steps) if steps else full

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows[index * self.batch_size : (index + 1) * self.batch_size]
        images, labels = self.decode(rows, np.random.default_rng(index), self.rows)
        crops = [transforms.crop_grid(p, self.crop_size, 1)[0] for p in images]
        return np.stack(crops).astype(np.float32), labels


def feeds(table: ImageTable, train_rows: Sequence[int], val_rows: Sequence[int], config: TrainConfig, *,
          validation_steps: int | None = None, **options) -> tuple[keras.utils.PyDataset, keras.utils.PyDataset]:
    """The training and validation feeds for ``config.model`` (``options``: workers, window_rows …)."""
    workers = {k: v for k, v in options.items() if k in ("workers", "use_multiprocessing")}
    if config.model == "seed_cnn":
        train = WholeImages(table, train_rows, image_size=config.image_size, batch_size=config.batch_size,
                            steps=config.steps_per_epoch, seed=config.seed, **options)
        val = WholeImages(table, val_rows, image_size=config.image_size, batch_size=config.batch_size, shuffle=False,
                          steps=validation_steps, **workers)
        return train, val
    train = StreamingCrops(table, train_rows, config, steps=config.steps_per_epoch, **options)
    val = CentreCrops(table, val_rows, crop_size=config.crop_size, steps=validation_steps, **workers)
    return train, val


def compiled(config: TrainConfig) -> keras.Model:
    """``config.model`` built and compiled: Adam, binary cross-entropy and AUC (from logits for ours)."""
    from aiornot.model import networks

    model = networks.build(config.model, **config.model_options)
    logits = config.model != "seed_cnn"  # the forensic CNN outputs a logit, the seed's a probability
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=logits),
                  metrics=[keras.metrics.AUC(name="auc", from_logits=logits)])
    return model


def fit_stream(table: ImageTable, train_rows: Sequence[int], val_rows: Sequence[int], config: TrainConfig, *,
               validation_steps: int | None = None, workers: int | None = None, use_multiprocessing: bool = False,
               window_rows: int = DEFAULT_WINDOW_ROWS, verbose: bool = True) -> TrainResult:
    """Train ``config.model`` on rows of ``table`` streamed from disk; early stopping on validation AUC.

    The streaming counterpart of :func:`aiornot.training.train.fit`: the same models, losses, callbacks and
    result, with memory bounded by the batch size rather than the dataset. ``config.steps_per_epoch``
    and ``validation_steps`` cap the batches (a capped epoch for benchmarks and smoke runs).
    """
    set_seeds(config.seed)
    train, val = feeds(table, train_rows, val_rows, config, validation_steps=validation_steps,
                       workers=workers or default_workers(), use_multiprocessing=use_multiprocessing, window_rows=window_rows)
    model = compiled(config)
    callbacks = training_callbacks(config, verbose=verbose)
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    best = int(frame["val_auc"].idxmax()) if frame["val_auc"].notna().any() else 1
    seen = len(train) * config.batch_size * len(frame)
    return TrainResult(model, frame, config, seconds, seen / max(seconds, 1e-9), best)
