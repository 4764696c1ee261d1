"""The one dataset reader (aiornot.io.reader): which paths are Parquet, label tables of every layout, clear errors.

:func:`aiornot.io.datasets.load` (the notebooks' frame), :mod:`aiornot.io.stream` (the full run) and
:mod:`aiornot.apps.batch` (Ray scans) all read through it; their own tests cover what they add.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiornot.io import datasets, decode, reader
from aiornot.io.reader import DatasetError
from conftest import deep_tree, encode, photo_like, remove_deep_tree, write_shard, write_shards


def forbid_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(decode, "open_image", refuse)
    monkeypatch.setattr(reader.ImageTable, "_row_group", refuse)


def test_parquet_detection_walks_any_depth(tmp_path):
    """``scan`` asks first whether an input is a Parquet dataset; on a deep tree that died in rglob."""
    top = tmp_path / "deep"
    top.mkdir()
    bottom = deep_tree(top, 1_000)
    try:
        (bottom / "photo.jpg").write_bytes(b"")
        assert reader.is_parquet_dataset(top) is False  # was RecursionError
        (bottom / "rows.parquet").write_bytes(b"")
        assert reader.is_parquet_dataset(top) is True
    finally:
        remove_deep_tree(top)


def test_shards_are_found_at_any_depth_in_order(tmp_path):
    for name in ("b/2.parquet", "a.parquet", "b/1.PARQUET", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in reader.parquet_shards(tmp_path)] == ["a.parquet", "b/1.PARQUET", "b/2.parquet"]
    assert reader.parquet_shards(tmp_path / "a.parquet") == [tmp_path / "a.parquet"]
    assert reader.parquet_shards(tmp_path / "notes.txt") == [] and not reader.is_parquet_dataset(tmp_path / "notes.txt")


def test_the_notebooks_frame_and_the_label_table_are_the_same_rows(tmp_path, monkeypatch):
    images = [encode(photo_like(i, (40, 32)), "JPEG") for i in range(10)]
    root = write_shards(tmp_path / "hf", images, shards=2, row_group_size=3)
    frame = datasets.load(root)
    forbid_decoding(monkeypatch)
    table = reader.open_table(root)
    for column in reader.LABEL_COLUMNS:
        assert frame[column].tolist() == table.labels[column].tolist(), column
    assert table.is_parquet and len(np.unique(table.units)) == 4 and table.shared_columns == {"id", "image", "label", "source"}


def test_required_columns_and_the_columns_every_shard_has(tmp_path):
    write_shard(tmp_path / "a.parquet", ["a.jpg"], [b"x"], [0])
    write_shard(tmp_path / "b.parquet", ["b.jpg"], [b"y"])  # no label column here
    table = reader.open_table(tmp_path, required=("id",))
    assert table.shared_columns == {"id", "image"} and table.labels["label"].tolist() == [0, reader.UNLABELLED]
    pq.write_table(pq.read_table(tmp_path / "b.parquet").drop_columns(["id"]), tmp_path / "b.parquet")
    assert reader.open_table(tmp_path).labels["id"].tolist() == ["a.jpg", "b.jpg"]  # the image's path stands in
    with pytest.raises(DatasetError, match=r"b.parquet: no 'id' column.*key for resuming"):
        reader.open_table(tmp_path, required=("id",))


def test_bad_layouts_are_clear_errors(tmp_path):
    pq.write_table(pa.table({"id": ["a"], "pixels": [b"x"]}), tmp_path / "wrong.parquet")
    with pytest.raises(DatasetError, match="no 'image' column"):
        reader.open_table(tmp_path / "wrong.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        reader.open_table(empty)
    write_shard(tmp_path / "labels.parquet", ["a"], [b"x"], [7])
    with pytest.raises(DatasetError, match="labels must be 0"):
        reader.open_table(tmp_path / "labels.parquet")
    with pytest.raises(DatasetError, match="does not exist"):
        reader.open_table(tmp_path / "missing")


def test_image_folders_are_listed_lazily_and_unlabelled_folders_accepted(tmp_path, monkeypatch):
    for name, label in (("real", 0), ("ai", 1)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "data" / name / f"{i}.png").write_bytes(encode(photo_like(i + 10 * label), "PNG"))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "x.jpg").write_bytes(encode(photo_like(3), "JPEG"))
    forbid_decoding(monkeypatch)
    table = reader.open_table(tmp_path / "data")
    assert sorted(table.labels["label"]) == [0, 0, 0, 1, 1, 1] and table.labels["id"].is_unique
    assert all(isinstance(s, str) for s in table.sources([0, 5]))
    unlabelled = reader.open_table(tmp_path / "test")
    assert unlabelled.labels["id"].tolist() == ["x.jpg"] and not unlabelled.labelled
