"""Embeddings of a whole dataset on Ray Data, into the feature store, resumable by sha256.

The same machinery as ``aiornot scan --engine ray`` (:mod:`aiornot.apps.batch`): the same Ray session
rules (``--ray-address``, else ``RAY_ADDRESS``, else a private local instance), one actor pool
in which every actor loads the encoder **once**, and ``map_batches`` over the images::

    Parquet shards ──► read_parquet(id, image) ─┐
    image folder  ──► blocks of (id, path)  ────┴► map_batches(_EmbedBatch actors: decode → key → encode)
        ──► iter_batches (driver, streaming) ──► feature-store part files (+ an id → key index)

Keys are :func:`aiornot.model.encoders.pixel_key` — the sha256 of the decoded picture — so the output
is a :class:`~aiornot.model.encoders.FeatureStore` folder that ``FeatureStore(folder)`` reads as it is.
Actors are told the keys already stored and skip encoding them: a re-run resumes, and a picture
that appears twice is encoded once. The driver holds one batch of features at a time.

Run it as ``aiornot ray-embed DATA [--store DIR] [--ray-address ADDR] [--workers N]``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from aiornot.io.datasets import DatasetError
from aiornot.io.decode import ImageDecodeError, open_image

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import ray.data

#: Columns of the id → key index written beside the features (``ids-*.parquet``).
INDEX_COLUMNS = ("id", "key", "error_code", "error")


@dataclass
class EmbedSummary:
    """What :func:`embed_with_ray` did: images encoded now, found already stored, unreadable; time."""

    encoded: int
    stored: int
    failed: int
    seconds: float
    store: Path

    @property
    def images_per_second(self) -> float:
        return (self.encoded + self.stored + self.failed) / max(self.seconds, 1e-9)


def stored_keys(store: str | Path) -> list[str]:
    """Keys already in a feature-store folder (only the ``key`` column is read)."""
    import pyarrow.parquet as pq

    folder = Path(store)
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    return sorted({key for part in parts for key in pq.read_table(part, columns=["key"]).column("key").to_pylist()})


def write_features(store: Path, keys: Sequence[str], features: dict[str, np.ndarray]) -> None:
    """One part file in the :class:`~aiornot.model.encoders.FeatureStore` layout (key + fixed-size lists)."""
    import pyarrow as pa

    columns: dict[str, Any] = {"key": pa.array(list(keys), pa.string())}
    for kind, values in features.items():
        matrix = np.asarray(values, np.float32)
        columns[kind] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])
    _write_atomically(store / f"part-{time.time_ns()}.parquet", pa.table(columns))


def _write_atomically(target: Path, table: "pa.Table") -> None:
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, target)


# -------------------------------------------------------------------------------- the worker
class _EmbedBatch:
    """Ray Data callable class: builds the encoder once per actor, then embeds batches of images."""

    def __init__(self, encoder_factory: Callable[[], Any], known: Sequence[str], cpus: float = 1.0) -> None:
        from aiornot.apps.batch import _limit_threads

        _limit_threads(cpus)
        self.encoder = encoder_factory()
        self.known = set(known)

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        from aiornot.apps.batch import image_sources
        from aiornot.model.encoders import pixel_key

        ids, sources = image_sources(batch)
        keys, errors, todo = [None] * len(ids), [(None, None)] * len(ids), []
        for position, source in enumerate(sources):
            try:
                pixels = open_image(source).pixels
            except ImageDecodeError as error:
                errors[position] = (error.code, error.message)
                continue
            keys[position] = pixel_key(pixels)
            if keys[position] not in self.known:
                todo.append((position, pixels))
                self.known.add(keys[position])  # the same picture twice in a batch: encoded once
        vectors = self.encoder.embed([pixels for _, pixels in todo]) if todo else {}
        columns = {"id": pa.array(ids, pa.string()), "key": pa.array(keys, pa.string()),
                   "error_code": pa.array([e[0] for e in errors], pa.string()),
                   "error": pa.array([e[1] for e in errors], pa.string())}
        for kind, values in vectors.items():
            rows: list[Any] = [None] * len(ids)
            for (position, _), vector in zip(todo, np.asarray(values, np.float32)):
                rows[position] = vector.tolist()
            columns[f"feature_{kind}"] = pa.array(rows, pa.list_(pa.float32()))
        return pa.table(columns)


# ------------------------------------------------------------------------------ the pipeline
def source_dataset(data: str | Path, *, limit: int | None = None, block_rows: int = 256) -> "ray.data.Dataset":
    """The images of a dataset as a Ray Dataset, read by the workers (Parquet) or by path (files)."""
    import pyarrow as pa
    import ray.data

    from aiornot.io.stream import open_table

    table = open_table(data)
    if table.is_parquet:
        shards = [str(shard) for shard in table.shard_paths]
        columns = ["image"] + (["id"] if _has_id(shards[0]) else [])
        dataset = ray.data.read_parquet(shards, columns=columns)
    else:
        ids, paths = table.labels["id"].astype(str).tolist(), table.labels["path"].astype(str).tolist()
        blocks = [pa.table({"id": ids[i : i + block_rows], "path": pa.array([os.fsencode(p) for p in paths[i : i + block_rows]], pa.binary())})
                  for i in range(0, len(ids), block_rows)]
        dataset = ray.data.from_arrow(blocks)
    return dataset.limit(limit) if limit else dataset


def _has_id(shard: str) -> bool:
    import pyarrow.parquet as pq

    return "id" in pq.ParquetFile(shard).schema_arrow.names


def default_encoder_factory(cpus: float = 1.0) -> Callable[[], Any]:
    """The offline CLIP tower, with as many threads as Ray gave each actor."""
    from aiornot.model.encoders import OnnxImageEncoder

    return functools.partial(OnnxImageEncoder, threads=max(1, int(cpus)))


def embed_dataset(dataset: "ray.data.Dataset", *, encoder_factory: Callable[[], Any], known: Sequence[str] = (),
                  batch_size: int = 16, num_workers: int = 1, cpus_per_worker: float = 1.0) -> "ray.data.Dataset":
    """``dataset`` mapped to embedding rows (``id``, ``key``, ``error_code``, ``error``, ``feature_<kind>``), lazily.

    The building block of :func:`embed_with_ray`, for notebooks on a cluster. ``known`` keys are
    not encoded again (their rows carry the key and no features).
    """
    import ray.data

    return dataset.map_batches(
        _EmbedBatch,
        fn_constructor_kwargs=dict(encoder_factory=encoder_factory, known=list(known), cpus=cpus_per_worker),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=num_workers),
        num_cpus=cpus_per_worker,
        udf_modifying_row_count=False,
    )


def embed_with_ray(data: str | Path, store: str | Path, *, encoder_factory: Callable[[], Any] | None = None,
                   address: str | None = None, num_workers: int | None = None, batch_size: int = 16,
                   limit: int | None = None, progress: bool = True) -> EmbedSummary:
    """Embed every image of ``data`` (or the first ``limit``) into the feature-store folder ``store``.

    ``address``: as ``aiornot scan --ray-address`` — None uses a running Ray, else ``RAY_ADDRESS``,
    else a private local instance; ``auto``, ``host:port`` or ``ray://host:port`` connect to a
    cluster (whose nodes must all read ``data``). Raises :class:`aiornot.apps.batch.BatchError` when
    Ray fails, with the worker's own error line.
    """
    try:
        import ray  # noqa: F401 — an optional dependency
    except ImportError as error:
        from aiornot.apps.batch import BatchError

        raise BatchError("Ray is not installed; install it with: pip install 'aiornot[ray]'") from error
    from aiornot.apps import batch

    store = Path(store)
    known = stored_keys(store)
    with batch.ray_session(address, num_cpus=num_workers), batch._quiet_ray_data():
        workers = batch._worker_count(num_workers)
        dataset = embed_dataset(source_dataset(data, limit=limit), encoder_factory=encoder_factory or default_encoder_factory(),
                                known=known, batch_size=batch_size, num_workers=workers)
        return _collect(dataset, store, progress=progress, workers=workers)


def _collect(dataset: "ray.data.Dataset", store: Path, *, progress: bool, workers: int) -> EmbedSummary:
    """Write each arriving batch's new features and its id → key index; count what happened."""
    import ray.exceptions
    from tqdm import tqdm

    from aiornot.apps.batch import BatchError, _root_cause

    started, counts = time.perf_counter(), {"encoded": 0, "stored": 0, "failed": 0}
    with tqdm(desc=f"embedding (ray, {workers} workers)", unit="img", disable=not progress, file=sys.stderr) as bar:
        try:
            for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                _store_batch(table, store, counts)
                bar.update(table.num_rows)
        except ray.exceptions.RayError as error:
            raise BatchError(f"the Ray embedding job failed after {sum(counts.values())} images ({_root_cause(error)}); "
                             "a re-run resumes from the stored keys") from error
    return EmbedSummary(counts["encoded"], counts["stored"], counts["failed"], time.perf_counter() - started, store)


def _store_batch(table: "pa.Table", store: Path, counts: dict[str, int]) -> None:
    kinds = [name for name in table.column_names if name.startswith("feature_")]
    keys = table.column("key").to_pylist()
    fresh = [i for i, row in enumerate(table.column(kinds[0]).to_pylist()) if row is not None] if kinds else []
    if fresh:
        features = {name.removeprefix("feature_"): np.asarray(table.column(name).take(fresh).to_pylist(), np.float32)
                    for name in kinds}
        write_features(store, [keys[i] for i in fresh], features)
    failed = sum(key is None for key in keys)
    counts["encoded"] += len(fresh)
    counts["failed"] += failed
    counts["stored"] += len(keys) - len(fresh) - failed
    _write_atomically(store / f"ids-{time.time_ns()}.parquet", table.select(list(INDEX_COLUMNS)))


def read_index(store: str | Path) -> "pd.DataFrame":
    """The id → key index of a store (one row per id, the latest wins), to join ids to features."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted(Path(store).glob("ids-*.parquet"))
    if not parts:
        raise DatasetError(f"{store}: no ids-*.parquet index; run `aiornot ray-embed` first")
    frame = pd.concat([pq.read_table(part).to_pandas() for part in parts], ignore_index=True)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)
