"""Image bytes read from Parquet shards on demand (aiornot.io.parquet): the row-group reader shared by
threads, pickled to worker processes and re-opened after a fork. Reading rows through a loaded frame
(aiornot.io.datasets.image_source) is tested in test_datasets.py."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from concurrent.futures import ThreadPoolExecutor

from aiornot.io import datasets
from aiornot.io.parquet import parse_location
from conftest import encode, noise_png, photo_like, write_shards


def test_threads_share_the_parquet_reader_safely(tmp_path):
    # A loader's worker threads share the module's reader; one ParquetFile read by two threads at
    # once crashes the process, so this reads many row groups of the same shards concurrently.
    images = [noise_png(i, size=(64, 64)) for i in range(24)]
    frame = datasets.load(write_shards(tmp_path / "hf", images, shards=2, row_group_size=2))
    rows = [frame.iloc[i] for i in range(len(frame))]
    with ThreadPoolExecutor(8) as threads:
        for _ in range(50):
            datasets._PARQUET_IMAGES.clear()
            assert list(threads.map(datasets.image_source, rows)) == images


def _digest_of_row(row):
    return hashlib.sha256(datasets.image_source(row)).hexdigest()


def test_locations_survive_pickling_and_work_in_a_fresh_worker_process(tmp_path):
    images = [encode(photo_like(i, (64, 48)), "PNG") for i in range(12)]
    frame = datasets.load(write_shards(tmp_path / "hf", images, shards=2, row_group_size=2))
    datasets.image_source(frame.iloc[0])  # the parent has a shard open and a row group cached before forking
    copy = pickle.loads(pickle.dumps(frame))
    assert copy["parquet_location"].tolist() == frame["parquet_location"].tolist()
    datasets._PARQUET_IMAGES.clear()  # as in a fresh process: nothing cached, nothing open
    assert [datasets.image_source(copy.iloc[i]) for i in range(12)] == images
    reader = pickle.loads(pickle.dumps(datasets._PARQUET_IMAGES))
    assert reader.image(*parse_location(copy.loc[5, "parquet_location"])) == images[5]
    # A fresh process (spawn, as Ray and Keras' worker processes start) reads the rows it is sent. Not fork: forking
    # a test process that already runs TensorFlow's and Arrow's threads can deadlock the child in a lock it inherited.
    expected = [hashlib.sha256(b).hexdigest() for b in images]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map_async(_digest_of_row, [copy.iloc[i] for i in range(12)]).get(timeout=300) == expected


def test_a_reader_in_a_forked_process_opens_its_own_files(tmp_path, monkeypatch):
    """After a fork the parent's open handles are dropped, not shared (the fork is simulated by a new pid)."""
    from aiornot.io import parquet

    images = [encode(photo_like(i, (64, 48)), "PNG") for i in range(4)]
    frame = datasets.load(write_shards(tmp_path / "hf", images, shards=1, row_group_size=2))
    reader = parquet.RowGroupReader(cache_units=1)
    shard, group, offset = parse_location(frame.loc[0, "parquet_location"])
    assert reader.image(shard, group, offset) == images[0]
    parent_handle = next(iter(reader._files.values()))[0]
    monkeypatch.setattr(parquet.os, "getpid", lambda: -1)
    shard, group, offset = parse_location(frame.loc[3, "parquet_location"])
    assert reader.image(shard, group, offset) == images[3]
    assert next(iter(reader._files.values()))[0] is not parent_handle and reader._pid == -1
