"""KERAS_BACKEND=jax builds and trains both CNNs, from memory and streamed from disk, and fits the detector's
heads with no code change.

Each test runs in a fresh interpreter: the backend is chosen once, when Keras is first imported. All
slow: each starts JAX and trains.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import image_shard

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    from aiornot.model import networks
    from aiornot.training import train
    from aiornot.detector import Detector
    assert keras.backend.backend() == "jax", keras.backend.backend()

    print(networks.forensic_detector().predict(np.zeros((2, 64, 64, 3), "float32"), verbose=0).shape)
    print(networks.seed_cnn().count_params())

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (72, 80, 3), dtype=np.uint8) for _ in range(12)]
    labels = np.array([0, 1] * 6)
    seed = train.TrainConfig(model="seed_cnn", epochs=1, batch_size=4, image_size=32, model_options={"image_size": 32})
    run = train.fit(images[:8], labels[:8], images[8:], labels[8:], seed, verbose=False)
    assert np.isfinite(run.history["loss"]).all()
    print("seed_cnn ok")

    class MeanColour:  # a stand-in for the CLIP tower: the heads are what is tested
        id = "mean-colour"
        def embed(self, batch):
            return {"embeds": np.stack([p.reshape(-1, 3).mean(axis=0) / 255 for p in batch]).astype(np.float32)}

    recipe = train.DetectorRecipe(forensic=train.TrainConfig(epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1,
                                                             model_options={"widths": (8, 16)}),
                                  reencoded_views=False, max_tiles=4)
    detector, _ = train.fit_detector(images[:8], labels[:8], None, images[8:], labels[8:], recipe,
                                     encoder=MeanColour(), verbose=False)
    assert detector.semantic is not None and set(detector.expert_names) == {"semantic", "forensic"}
    detector.semantic._encoder = MeanColour()
    saved = detector.save(sys.argv[1])
    assert not (saved / "model.tflite").exists()  # the TFLite export stays a TensorFlow-backend step
    reloaded = Detector.load(saved)
    reloaded.semantic._encoder = MeanColour()
    scores = reloaded.scores(images[:3])
    assert np.all((scores >= 0) & (scores <= 1)), scores
    print("detector ok", reloaded.runtime)
""")


def test_jax_backend_builds_and_trains_both_cnns_and_fits_the_heads(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(2, 1)" in done.stdout and "37385729" in done.stdout  # the detector's logit and the seed's size, as under TensorFlow
    assert "seed_cnn ok" in done.stdout and "detector ok keras" in done.stdout


STREAM_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    from aiornot.io import stream
    from aiornot.training import feed
    from aiornot.training.train import TrainConfig
    assert keras.backend.backend() == "jax", keras.backend.backend()
    table = stream.open_table(sys.argv[1])
    for config in (TrainConfig(model="seed_cnn", epochs=1, batch_size=4, image_size=32, steps_per_epoch=1,
                               model_options={"image_size": 32}),
                   TrainConfig(model="forensic_detector", epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1,
                               model_options={"widths": (8, 16)})):
        result = feed.fit_stream(table, np.arange(12), np.arange(12, 16), config, workers=2, verbose=False)
        assert np.isfinite(result.history["loss"]).all()
        print(config.model, "ok")
""")


def test_one_streamed_step_trains_under_jax(tmp_path):
    shard = image_shard(tmp_path, 16)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(shard)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seed_cnn ok" in done.stdout and "forensic_detector ok" in done.stdout
