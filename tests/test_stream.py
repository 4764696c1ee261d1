"""Streaming datasets: the split from labels alone, batches in bounded memory, scores to Parquet."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import pytest

from aiornot.io import datasets, decode, stream
from aiornot.io.datasets import DatasetError
from conftest import image_shard, write_shard

def forbid_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded")

    for module in (decode, stream):
        monkeypatch.setattr(module, "open_image", refuse)
    monkeypatch.setattr(stream.ImageTable, "_row_group", refuse)


# ------------------------------------------------------------------------------ the split
def seed_rows(tmp_path):
    """18,618 label rows as two shards whose image bytes are not images (they would raise if decoded)."""
    labels = np.array([0] * 8285 + [1] * 10333)
    np.random.default_rng(0).shuffle(labels)
    ids = [f"{i}.jpg" for i in range(len(labels))]
    half = len(labels) // 2
    for index, part in enumerate((slice(0, half), slice(half, None))):
        write_shard(tmp_path / f"train-{index:05d}-of-00002.parquet", ids[part], [b"%PDF not an image"] * len(ids[part]),
                    labels[part].tolist(), row_group_size=1000)
    return labels


def test_seed_split_from_labels_alone_decodes_nothing(tmp_path, monkeypatch):
    labels = seed_rows(tmp_path)
    forbid_decoding(monkeypatch)
    table = stream.open_table(tmp_path)
    parts = datasets.split(table.labels, exact=True)
    assert (len(parts.train), len(parts.validation)) == (13032, 5586)
    assert not set(parts.train) & set(parts.validation)
    np.testing.assert_array_equal(table.labels["label"].to_numpy(), labels)
    for side in (parts.train, parts.validation):
        assert abs(labels[side].mean() - labels.mean()) < 0.001


def test_split_of_unlabelled_rows_is_a_clear_error(tmp_path):
    write_shard(tmp_path / "test.parquet", ["a.jpg", "b.jpg"], [b"x", b"y"])
    table = stream.open_table(tmp_path / "test.parquet")
    assert not table.labelled and set(table.labels["label"]) == {stream.UNLABELLED}
    with pytest.raises(DatasetError, match="no label"):
        datasets.split(table.labels, exact=True)


# ----------------------------------------------------------------------------- streaming


def test_batches_are_decoded_through_the_safe_decoder_and_bad_images_reported(tmp_path):
    table = stream.open_table(image_shard(tmp_path))
    assert table.is_parquet and len(np.unique(table.units)) == 6
    batches = list(stream.decode_batches(table, batch_size=8, progress=False))
    assert [len(b.rows) + len(b.skipped) for b in batches] == [8, 8, 8]
    skipped = [s for b in batches for s in b.skipped]
    assert [(s.id, s.code) for s in skipped] == [("img005.jpg", "corrupt")]
    assert all(p.shape == (80, 96, 3) and p.dtype == np.uint8 for b in batches for p in b.images)
    assert "1 skipped (1 corrupt)" == __import__("aiornot.io.datasets", fromlist=["x"]).skipped_summary(stream.skipped_frame(skipped))


def test_streaming_never_holds_more_than_one_batch_of_pixels(tmp_path, monkeypatch):
    table = stream.open_table(image_shard(tmp_path, 40, corrupt=()))
    live: list[weakref.ref] = []
    decode = stream.open_image

    def counted(source):
        decoded = decode(source)
        live.append(weakref.ref(decoded.pixels))
        return decoded

    monkeypatch.setattr(stream, "open_image", counted)
    peak = 0
    for batch in stream.decode_batches(table, batch_size=6, progress=False):
        gc.collect()
        peak = max(peak, sum(ref() is not None for ref in live))
        del batch
    assert len(live) == 40 and 0 < peak <= 6


def test_scores_stream_to_parquet_and_resume_by_id(tmp_path, tiny_model_dir):
    from aiornot.detector import Detector

    table = stream.open_table(image_shard(tmp_path, 12, corrupt=(2,)))
    detector = Detector.load(tiny_model_dir)
    out = tmp_path / "scores"
    first = stream.score_table(table, detector, out, rows=np.arange(5), batch_size=4, progress=False)
    assert (first.scored, first.failed, first.resumed) == (4, 1, 0)
    second = stream.score_table(table, detector, out, batch_size=4, progress=False)
    assert (second.scored, second.failed, second.resumed) == (7, 0, 5)
    scores = stream.read_scores(out)
    assert len(scores) == 12 and scores["id"].is_unique
    bad = scores.set_index("id").loc["img002.jpg"]
    assert bad["error_code"] == "corrupt" and pd.isna(bad["score"])
    good = scores.dropna(subset=["score"])
    assert good["sha256"].str.len().eq(64).all() and good["score_forensic"].between(0, 1).all()
    # The streamed scores are the detector's own scores for the same bytes.
    direct = next(detector.predict_many([table.sources([0])[0]]))
    assert scores.set_index("id").loc["img000.jpg", "score"] == pytest.approx(direct.score, abs=1e-6)
    with pytest.raises(DatasetError, match="no score files"):
        stream.read_scores(tmp_path / "nothing")


def test_every_expert_of_the_detector_has_a_score_column_even_when_not_run(tmp_path, tiny_model_dir):
    """An expert the fusion weighs 0 is not run: its column stays, empty, so every part has the same columns."""
    from aiornot.detector import Detector

    class WithAnUnrunExpert:
        """The tiny detector, as if it also had a semantic expert that its fusion weighs 0."""

        def __init__(self, detector: Detector) -> None:
            self.detector, self.name, self.expert_names = detector, detector.name, ("semantic", "forensic")

        def predict_many(self, *args, **kwargs):
            return self.detector.predict_many(*args, **kwargs)

    table = stream.open_table(image_shard(tmp_path, 4, corrupt=()))
    stream.score_table(table, WithAnUnrunExpert(Detector.load(tiny_model_dir)), tmp_path / "scores", progress=False)
    scores = stream.read_scores(tmp_path / "scores")
    assert scores["score_forensic"].between(0, 1).all() and scores["score_semantic"].isna().all()
