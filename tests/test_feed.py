"""Keras feeds that stream from disk (aiornot.training.feed): balanced crop batches, and one training step of each CNN.

The same step under JAX is in test_jax_backend.py; the full-size run built on these feeds in test_full_run.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from aiornot.io import stream
from aiornot.training import feed
from aiornot.training.train import TrainConfig
from conftest import image_shard


def tiny_configs() -> list[TrainConfig]:
    seed = TrainConfig(model="seed_cnn", epochs=1, batch_size=4, image_size=32, steps_per_epoch=1,
                       model_options={"image_size": 32})
    ours = TrainConfig(model="forensic_detector", epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1,
                       model_options={"widths": (8, 16)})
    return [seed, ours]


def test_crop_batches_are_balanced_shaped_and_skip_bad_images(tmp_path, capsys):
    table = stream.open_table(image_shard(tmp_path, 24, corrupt=(5,)))
    config = tiny_configs()[1]
    crops = feed.StreamingCrops(table, np.arange(24), config, steps=6, window_rows=8)
    seen = set()
    for index in range(len(crops)):
        x, y = crops[index]
        assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32 and y.ravel().tolist() == [0, 0, 1, 1]
    windows = crops.windows()
    assert sorted(np.concatenate(windows)) == list(range(24)) and all(len(w) >= 8 for w in windows[:-1])
    crops.on_epoch_end()
    assert not all(np.array_equal(a, b) for a, b in zip(windows, crops.windows()))  # reshuffled per epoch
    whole = feed.WholeImages(table, np.arange(24), image_size=32, batch_size=8, shuffle=False)
    for index in range(len(whole)):
        x, y = whole[index]
        seen.update(np.round(x.mean(axis=(1, 2, 3)), 5))
        assert x.shape == (8, 32, 32, 3) and 0 <= x.min() and x.max() <= 1
    assert "img005.jpg: corrupt" in capsys.readouterr().err and "img005.jpg" in whole.skipped


@pytest.mark.slow
@pytest.mark.parametrize("config", tiny_configs(), ids=lambda c: c.model)
def test_one_streamed_step_trains_under_tensorflow(tmp_path, config):
    table = stream.open_table(image_shard(tmp_path, 16))
    result = feed.fit_stream(table, np.arange(12), np.arange(12, 16), config, workers=2, verbose=False)
    assert len(result.history) == 1 and np.isfinite(result.history["loss"]).all()


