"""Streaming datasets: the split from labels alone, batches in bounded memory, scores to Parquet."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiornot import imageio, stream
from aiornot.data import DatasetError
from conftest import encode, photo_like

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_shard(path, ids, images, labels=None, *, row_group_size=None, extra=None):
    """One Parquet shard in the Hugging Face ``competitions/aiornot`` layout."""
    columns = {"id": ids, "image": pa.array([{"bytes": b, "path": i} for i, b in zip(ids, images)], type=IMAGE_TYPE)}
    if labels is not None:
        columns["label"] = labels
    columns.update(extra or {})
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def forbid_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded")

    for module in (imageio, stream):
        monkeypatch.setattr(module, "open_image", refuse)
    monkeypatch.setattr(stream.ImageTable, "_row_group", refuse)


# ------------------------------------------------------------------------------ the split
def seed_rows(tmp_path, *, sources=None):
    """18,618 label rows as two shards whose image bytes are not images (they would raise if decoded)."""
    labels = np.array([0] * 8285 + [1] * 10333)
    np.random.default_rng(0).shuffle(labels)
    ids = [f"{i}.jpg" for i in range(len(labels))]
    half = len(labels) // 2
    for index, part in enumerate((slice(0, half), slice(half, None))):
        extra = {"source": sources[part]} if sources is not None else None
        write_shard(tmp_path / f"train-{index:05d}-of-00002.parquet", ids[part], [b"%PDF not an image"] * len(ids[part]),
                    labels[part].tolist(), row_group_size=1000, extra=extra)
    return labels


def test_seed_split_from_labels_alone_decodes_nothing(tmp_path, monkeypatch):
    labels = seed_rows(tmp_path)
    forbid_decoding(monkeypatch)
    table = stream.open_table(tmp_path)
    parts = stream.split_labels(table.labels)
    assert (len(parts.train), len(parts.validation)) == (13032, 5586)
    assert not set(parts.train) & set(parts.validation)
    np.testing.assert_array_equal(table.labels["label"].to_numpy(), labels)
    for side in (parts.train, parts.validation):
        assert abs(labels[side].mean() - labels.mean()) < 0.001


def test_grouped_seed_split_is_exact_and_never_splits_a_source(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    # Sources of 1 to 12 images; each source is of one class (a camera roll, a generator batch).
    sizes = rng.integers(1, 13, 4000)
    sources = np.repeat(np.arange(len(sizes)), sizes)[:18618].astype(str)
    labels = seed_rows(tmp_path, sources=sources)
    frame = pd.DataFrame({"label": labels, "source": sources})
    frame["label"] = frame.groupby("source")["label"].transform("first")  # one class per source
    forbid_decoding(monkeypatch)
    parts = stream.split_labels(frame)
    assert (len(parts.train), len(parts.validation)) == (13032, 5586)
    assert not set(sources[parts.train]) & set(sources[parts.validation])
    values = frame["label"].to_numpy()
    assert abs(values[parts.validation].mean() - values.mean()) < 0.001
    again = stream.split_labels(frame)
    np.testing.assert_array_equal(parts.validation, again.validation)


def test_split_of_unlabelled_rows_is_a_clear_error(tmp_path):
    write_shard(tmp_path / "test.parquet", ["a.jpg", "b.jpg"], [b"x", b"y"])
    table = stream.open_table(tmp_path / "test.parquet")
    assert not table.labelled and set(table.labels["label"]) == {stream.UNLABELLED}
    with pytest.raises(DatasetError, match="no label"):
        stream.split_labels(table.labels)


def test_bad_layouts_are_clear_errors(tmp_path):
    pq.write_table(pa.table({"id": ["a"], "pixels": [b"x"]}), tmp_path / "wrong.parquet")
    with pytest.raises(DatasetError, match="no 'image' column"):
        stream.open_table(tmp_path / "wrong.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        stream.open_table(empty)
    write_shard(tmp_path / "labels.parquet", ["a"], [b"x"], [7])
    with pytest.raises(DatasetError, match="labels must be 0"):
        stream.open_table(tmp_path / "labels.parquet")
