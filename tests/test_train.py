"""Training (aiornot.training.train): batches balanced by class (and by content strata when asked), the seed CNN's resized
batches, the best epoch's weights kept, and the re-encoded training views."""

from __future__ import annotations

import numpy as np
import pytest

from aiornot.io import transforms
from aiornot.training import train
from conftest import pictures


def images_marked(count: int) -> list[np.ndarray]:
    """One flat image per row whose pixel value encodes its row index (so a crop tells its source)."""
    return [np.full((80, 80, 3), index, np.uint8) for index in range(count)]


def drawn_rows(batches: train.CropBatches) -> np.ndarray:
    rows = [batch[0][:, 0, 0, 0].astype(int) for batch in (batches[i] for i in range(len(batches)))]
    return np.concatenate(rows)


@pytest.fixture
def skewed() -> tuple[np.ndarray, np.ndarray]:
    """Like the sample: AI images are mostly portraits (stratum 1), real photos mostly not."""
    labels = np.array([0] * 40 + [1] * 40)
    strata = np.array([0] * 38 + [1] * 2 + [1] * 36 + [0] * 4)
    return labels, strata


def test_batches_are_class_balanced_and_follow_the_data_without_strata(skewed) -> None:
    labels, strata = skewed
    config = train.TrainConfig(batch_size=16, augment=False)
    rows = drawn_rows(train.CropBatches(images_marked(len(labels)), labels, config, steps=50, seed=0))
    assert np.mean(labels[rows]) == 0.5
    real_portraits = np.mean(strata[rows][labels[rows] == 0])
    assert real_portraits < 0.15  # about 2 in 40, as in the data


def test_strata_are_drawn_equally_within_each_class(skewed) -> None:
    labels, strata = skewed
    config = train.TrainConfig(batch_size=16, augment=False, balance_strata=True)
    batches = train.CropBatches(images_marked(len(labels)), labels, config, steps=50, seed=0, strata=strata)
    rows = drawn_rows(batches)
    assert np.mean(labels[rows]) == 0.5
    for label in (0, 1):
        assert np.mean(strata[rows][labels[rows] == label]) == 0.5  # 8 per class per batch: 4 and 4


def test_balancing_without_strata_is_a_clear_error(skewed) -> None:
    labels, strata = skewed
    images = images_marked(len(labels))
    config = train.TrainConfig(epochs=1, batch_size=8, balance_strata=True, steps_per_epoch=1)
    with pytest.raises(ValueError, match="train_strata"):
        train.fit(images, labels, images, labels, config, verbose=False)


def test_fit_returns_the_best_epochs_weights_not_the_last(monkeypatch) -> None:
    """Validation AUC is scripted to peak at epoch 2 of 3: the returned model must hold epoch 2's weights."""
    keras = train.keras
    scripted = iter([0.6, 0.9, 0.7])
    snapshots: list[list[np.ndarray]] = []

    class ScriptedEarlyStopping(keras.callbacks.EarlyStopping):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_auc"] = next(scripted)
            snapshots.append([w.copy() for w in self.model.get_weights()])
            super().on_epoch_end(epoch, logs)

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", ScriptedEarlyStopping)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(16)]
    labels = np.array([0, 1] * 8)
    config = train.TrainConfig(epochs=3, batch_size=8, crop_size=16, steps_per_epoch=2, augment=False, patience=5,
                               learning_rate=1e-2, model_options={"widths": (8,), "stem_width": 4})
    result = train.fit(images, labels, images, labels, config, verbose=False)
    assert len(snapshots) == 3 and len(result.history) == 3  # patience 5: all three epochs ran
    assert result.best_epoch == 2
    weights = result.model.get_weights()
    assert all(np.array_equal(got, best) for got, best in zip(weights, snapshots[1]))
    assert not all(np.array_equal(got, last) for got, last in zip(weights, snapshots[2]))  # training moved them


def test_with_reencoded_uses_given_copies_and_refuses_a_mismatch():
    from aiornot.training.train import with_reencoded

    images, labels = pictures(3), np.array([0, 1, 1])
    copies = pictures(3, seed=9)
    views, view_labels = with_reencoded(images, labels, copies=copies)
    assert all(a is b for a, b in zip(views[3:], copies)) and view_labels.tolist() == [0, 1, 1, 0, 1, 1]
    made, _ = with_reencoded(images, labels)
    assert np.array_equal(made[4], transforms.reencode_like_upload(images[1]))
    with pytest.raises(ValueError, match="2 re-encoded copies for 3 images"):
        with_reencoded(images, labels, copies=copies[:2])


def test_the_seed_cnn_batches_resize_one_batch_and_shuffle_per_epoch() -> None:
    images = [np.full((20, 30, 3), i, np.uint8) for i in range(10)]
    batches = train.ResizedBatches(images, np.arange(10) % 2, 8, 4, seed=1)
    first, labels = batches[0]
    assert len(batches) == 3 and first.shape == (4, 8, 8, 3) and first.max() <= 1.0
    assert np.array_equal(np.round(first[:, 0, 0, 0] * 255) % 2, labels[:, 0])  # each image keeps its own label
    order = [int(round(v * 255)) for v in np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(3)])]
    assert sorted(order) == list(range(10))  # every image once per epoch
    batches.on_epoch_end()
    assert [int(round(v * 255)) for v in batches[0][0][:, 0, 0, 0]] != order[:4]
    fixed = train.ResizedBatches(images, np.zeros(10), 8, 4, seed=None)
    assert [int(round(v * 255)) for v in fixed[1][0][:, 0, 0, 0]] == [4, 5, 6, 7]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["seed_cnn", "forensic_detector"])
def test_the_same_seed_trains_the_same_weights_bit_for_bit(model: str) -> None:
    """A report's numbers may move only when its inputs move: two fits with one seed give identical weights,
    and another seed gives others (so the check can fail)."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (72, 72, 3), dtype=np.uint8) for _ in range(16)]
    labels = np.array([0, 1] * 8)

    def weights(seed: int) -> list[np.ndarray]:
        config = train.TrainConfig(model=model, epochs=2, batch_size=8, crop_size=32, steps_per_epoch=2, image_size=256, seed=seed,
                                   patience=5, model_options={} if model == "seed_cnn" else {"widths": (8,), "stem_width": 4})
        return train.fit(images, labels, images, labels, config, verbose=False).model.get_weights()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
