"""Datasets of any size in bounded memory: labels without pixels, pixels batch by batch, scores to Parquet.

:func:`aiornot.io.datasets.load` hands back one DataFrame (for Parquet, each row's location, not its image bytes),
and the notebooks read its images through lazy views (:mod:`aiornot.io.lazy`), a batch at a time. This module
serves the full-size run (the seed's 18,618 + 43,442 images) without a DataFrame of rows to check first, and
keeps the pixels on disk:

* :func:`~aiornot.io.reader.open_table` (the one reader, re-exported here) reads a dataset's *label
  table* only — ``id``, ``label``, ``source``, ``generator`` — and where each row's image lives;
  :func:`aiornot.io.datasets.split` with ``exact=True`` computes the seed's split (13,032 / 5,586
  of 18,618) from it, without decoding a single image.
* :meth:`~aiornot.io.reader.ImageTable.sources` fetches the file bytes (or paths) of a few rows; Parquet is
  read one row group at a time, through a small cache, so memory is bounded by the cache, not the dataset.
* :func:`decode_batches` yields decoded images batch by batch through
  :func:`aiornot.io.decode.open_image`; unreadable images are reported in each batch's ``skipped``
  list (never dropped silently, never a traceback).
* :func:`score_table` scores a dataset with the :class:`~aiornot.detector.Detector` batch by batch
  into Parquet part files, resumable by ``id``, so notebooks read scores, not pixels.

Keras training on a table streams through :mod:`aiornot.training.feed`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from aiornot.contract.result import Result
from aiornot.io.decode import ImageDecodeError, open_image, read_bytes
from aiornot.io.reader import DatasetError, ImageTable
# Re-exported: notebooks, the README and the full run open tables through this module.
from aiornot.io.reader import LABEL_COLUMNS, UNLABELLED, open_table  # noqa: F401

if TYPE_CHECKING:
    import pyarrow as pa

    from aiornot.detector import Detector

# ---------------------------------------------------------------------------------- decoding
@dataclass
class Skipped:
    """One image that could not be decoded: which row, and why (a stable code and a message)."""

    row: int
    id: str
    label: int
    code: str
    reason: str


@dataclass
class DecodedBatch:
    """Decoded images of one batch: ``rows`` index the table; ``skipped`` says what could not be read."""

    rows: np.ndarray
    images: list[np.ndarray]
    labels: np.ndarray
    ids: list[str]
    skipped: list[Skipped] = field(default_factory=list)


def decode_rows(table: ImageTable, rows: Sequence[int], transform: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> DecodedBatch:
    """Decode ``rows`` through the one safe decoder; unreadable ones go to ``skipped``."""
    rows = np.asarray(rows, dtype=np.int64)
    ids = table.labels["id"].to_numpy()[rows]
    labels = table.labels["label"].to_numpy()[rows]
    kept, images, skipped = [], [], []
    for position, source in enumerate(table.sources(rows)):
        try:
            pixels = open_image(source).pixels
        except ImageDecodeError as error:
            skipped.append(Skipped(int(rows[position]), str(ids[position]), int(labels[position]), error.code, error.message))
            continue
        kept.append(position)
        images.append(transform(pixels) if transform else pixels)
    return DecodedBatch(rows[kept], images, labels[kept], [str(ids[i]) for i in kept], skipped)


def decode_batches(table: ImageTable, rows: Sequence[int] | None = None, *, batch_size: int = 32,
                   transform: Callable[[np.ndarray], np.ndarray] | None = None, progress: bool = True,
                   description: str = "decoding") -> Iterator[DecodedBatch]:
    """Decoded images of ``rows`` (default all, in storage order), ``batch_size`` at a time.

    Only one batch's pixels exist at once (as long as the caller lets the previous batch go).
    ``transform`` (e.g. a resize) is applied to each image as it is decoded.
    """
    from tqdm import tqdm

    rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with tqdm(total=len(rows), desc=description, unit="img", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(rows), batch_size):
            batch = decode_rows(table, rows[start : start + batch_size], transform)
            bar.update(len(batch.rows) + len(batch.skipped))
            yield batch


def skipped_frame(skipped: Sequence[Skipped]) -> pd.DataFrame:
    """Skipped images as the table :func:`aiornot.io.datasets.skipped_summary` summarises (path, label, code, reason)."""
    return pd.DataFrame([{"path": s.id, "label": s.label, "code": s.code, "reason": s.reason} for s in skipped],
                        columns=["path", "label", "code", "reason"])


# ----------------------------------------------------------------------------------- scoring
SCORE_PART = "part-{start:09d}-{stamp}.parquet"


@dataclass
class ScoreSummary:
    """What :func:`score_table` did: rows scored now, rows already in the output, failures, time."""

    scored: int
    resumed: int
    failed: int
    seconds: float
    output: Path

    @property
    def images_per_second(self) -> float:
        return (self.scored + self.failed) / max(self.seconds, 1e-9)


def score_table(table: ImageTable, detector: "Detector", output: str | Path, *, rows: Sequence[int] | None = None,
                batch_size: int = 32, provenance: bool = True, progress: bool = True) -> ScoreSummary:
    """Score ``rows`` of ``table`` (default all) with ``detector`` into Parquet parts under ``output``.

    One part file per batch, written atomically; ids already in ``output`` are skipped, so an
    interrupted run resumes. Each row carries ``id``, ``sha256`` (of the file's bytes), ``label``
    and the :class:`~aiornot.detector.Result` fields (as :func:`aiornot.io.result_rows.result_to_row` lays
    them out), plus one flat ``score_<expert>`` column per expert of the detector: empty where the expert was not
    run (the fusion weighs it 0), so every part has the same columns. Read with :func:`read_scores`.
    """
    from tqdm import tqdm

    output = Path(output)
    rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)
    done = scored_ids(output)
    todo = rows[~np.isin(table.labels["id"].to_numpy()[rows], list(done))] if done else rows
    started, scored, failed = time.perf_counter(), 0, 0
    with tqdm(total=len(todo), desc="scoring", unit="img", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(todo), batch_size):
            part = todo[start : start + batch_size]
            results, digests = _score_rows(table, part, detector, provenance)
            _write_part(output, int(part[0]), _score_columns(table, part, results, digests, detector.expert_names))
            failed += sum(not r.ok for r in results)
            scored += sum(r.ok for r in results)
            bar.update(len(part))
    return ScoreSummary(scored, len(rows) - len(todo), failed, time.perf_counter() - started, output)


def _score_rows(table: ImageTable, rows: np.ndarray, detector: "Detector", provenance: bool) -> tuple[list["Result"], list]:
    """One Result per row, in order; a row whose file cannot be read gets an error Result."""
    ids = table.labels["id"].to_numpy()[rows]
    data, results, digests = [], [None] * len(rows), [None] * len(rows)
    for position, source in enumerate(table.sources(rows)):
        try:
            data.append((position, read_bytes(source)))
        except ImageDecodeError as error:
            results[position] = Result.failure(str(ids[position]), error, detector.name)
    scored = detector.predict_many([payload for _, payload in data], labels=[str(ids[position]) for position, _ in data],
                                   batch_size=len(rows) or 1, provenance=provenance)
    for (position, payload), result in zip(data, scored):
        results[position], digests[position] = result, hashlib.sha256(payload).hexdigest()
    return results, digests


def _score_columns(table: ImageTable, rows: np.ndarray, results: list["Result"], digests: list,
                   experts: Sequence[str]) -> "pa.Table":
    """The part's columns; ``experts``: the detector's, one ``score_<expert>`` column each (null where not run)."""
    import pyarrow as pa

    from aiornot.io.result_rows import result_to_row, row_schema

    records = [result_to_row(r) for r in results]
    frame = pa.Table.from_pylist(records, schema=row_schema())
    extra = {
        "id": pa.array(table.labels["id"].to_numpy()[rows].astype(str)),
        "sha256": pa.array(digests, pa.string()),
        "label": pa.array(table.labels["label"].to_numpy()[rows].astype(np.int64)),
        **{f"score_{name}": pa.array([(r.experts or {}).get(name) for r in results], pa.float64()) for name in sorted(experts)},
    }
    for position, (name, values) in enumerate(extra.items()):
        frame = frame.add_column(position, name, values)
    return frame


def _write_part(directory: Path, start: int, columns: "pa.Table") -> None:
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SCORE_PART.format(start=start, stamp=time.time_ns())
    temporary = target.with_suffix(".tmp")
    pq.write_table(columns, temporary)
    os.replace(temporary, target)


def scored_ids(output: str | Path) -> set[str]:
    """Ids already in a score folder (only the ``id`` column is read)."""
    import pyarrow.parquet as pq

    folder = Path(output)
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    return {value for part in parts for value in pq.read_table(part, columns=["id"]).column("id").to_pylist()}


def read_scores(output: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The scores a :func:`score_table` run wrote, one row per image (the latest part wins for an id)."""
    import pyarrow.parquet as pq

    parts = sorted(Path(output).glob("part-*.parquet"), key=lambda p: p.name.split("-")[-1])
    if not parts:
        raise DatasetError(f"{output}: no score files (part-*.parquet); run the scoring first")
    frame = pd.concat([pq.read_table(p, columns=list(columns) if columns else None).to_pandas() for p in parts], ignore_index=True)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True) if "id" in frame else frame
