"""Datasets of any size in bounded memory: labels without pixels, pixels batch by batch, scores to Parquet.

:func:`aiornot.io.datasets.load` hands back one DataFrame (for Parquet, each row's location, not its image bytes),
and the notebooks read its images through lazy views (:mod:`aiornot.io.lazy`), a batch at a time. This module
serves the full-size run (the seed's 18,618 + 43,442 images) without a DataFrame of rows to check first, and
keeps the pixels on disk:

* :func:`open_table` reads a dataset's *label table* only — ``id``, ``label``, ``source``,
  ``generator`` — from Hugging Face Parquet shards (the image column is never read), a CSV
  manifest or an image folder (file names only). Each row remembers where its image lives.
* :func:`split_labels` computes the seed's split (13,032 / 5,586 of 18,618) from that table,
  without decoding a single image.
* :meth:`ImageTable.sources` fetches the file bytes (or paths) of a few rows; Parquet is read one
  row group at a time, through a small cache, so memory is bounded by the cache, not the dataset.
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

from aiornot.io.datasets import IMAGE_SUFFIXES, SEED_VALIDATION_FRACTION, DatasetError, Split, open_parquet_shard
from aiornot.io.decode import ImageDecodeError, open_image, read_bytes
from aiornot.io.parquet import RowGroupReader, image_columns, image_field, row_positions
from aiornot.contract.result import Result

if TYPE_CHECKING:
    import pyarrow as pa

    from aiornot.detector import Detector

#: The columns of a label table (``label`` is -1 where the dataset has none, e.g. the test split).
LABEL_COLUMNS = ("id", "label", "source", "generator")
#: Label value of an unlabelled row.
UNLABELLED = -1
#: Parquet row groups each :class:`ImageTable` keeps in memory (compressed bytes, not pixels).
DEFAULT_CACHE_UNITS = 16
#: Parquet shards each :class:`ImageTable` keeps open at once.
OPEN_SHARDS = 2


# ----------------------------------------------------------------------------- the label table
class ImageTable:
    """A dataset's label table, plus where each row's image lives; the pixels stay on disk.

    ``labels`` has :data:`LABEL_COLUMNS` (and ``path`` for files on disk). ``units`` gives each
    row's storage unit: a Parquet row group, or the row itself for image files. Rows of the same
    unit are cheap to read together, which :mod:`aiornot.training.feed` uses to shuffle in windows.
    """

    def __init__(self, labels: pd.DataFrame, *, shards: Sequence[Path] = (), locations: np.ndarray | None = None,
                 root: Path | None = None, cache_units: int = DEFAULT_CACHE_UNITS) -> None:
        self.labels = labels.reset_index(drop=True)
        self.root = root
        self._shards = [Path(p) for p in shards]
        # (shard, row group, offset in the group) per row; None for image files.
        self._locations = locations
        self.cache_units = max(1, cache_units)
        # The row-group cache and the open shards; it pickles without them and re-opens after a fork.
        self._reader = RowGroupReader(cache_units=self.cache_units, open_files=OPEN_SHARDS)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shard_paths(self) -> list[Path]:
        """The Parquet shards this table reads (none for image files)."""
        return list(self._shards)

    @property
    def is_parquet(self) -> bool:
        return self._locations is not None

    @property
    def labelled(self) -> bool:
        """Whether every row has a 0/1 label (the competition's test split has none)."""
        return bool(len(self.labels)) and bool((self.labels["label"] != UNLABELLED).all())

    @property
    def units(self) -> np.ndarray:
        """Storage unit per row (row groups numbered across shards; one unit per file otherwise)."""
        if self._locations is None:
            return np.arange(len(self))
        shard, group = self._locations[:, 0].astype(np.int64), self._locations[:, 1].astype(np.int64)
        return shard * (int(group.max(initial=0)) + 1) + group

    def sources(self, rows: Sequence[int]) -> list[bytes | str]:
        """What to hand to :func:`~aiornot.io.decode.open_image` for each row: file bytes, or a path."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._locations is None:
            return [str(p) for p in self.labels["path"].to_numpy()[rows]]
        result: list[bytes | str] = [b""] * len(rows)
        order = np.argsort(self._locations[rows, 0] * 1_000_000 + self._locations[rows, 1], kind="stable")
        for position in order:
            shard, group, offset = (int(v) for v in self._locations[rows[position]])
            value = self._row_group(shard, group)[offset].as_py()
            result[position] = value or b""
        return result

    def _row_group(self, shard: int, group: int) -> "pa.Array":
        """The image bytes of row group ``group`` of shard number ``shard`` (cached)."""
        return self._reader.row_group(self._shards[shard], group)


def open_table(path: str | Path, *, cache_units: int = DEFAULT_CACHE_UNITS) -> ImageTable:
    """The label table of a dataset, read without touching a pixel.

    Accepts the layouts of :func:`aiornot.io.datasets.load` — Hugging Face Parquet shards, a CSV
    manifest, a ``real/``/``ai/`` folder — and also a plain folder of unlabelled images (the
    competition's test images). Raises :class:`~aiornot.io.datasets.DatasetError` with what was wrong.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root} does not exist; pass Parquet shards, a CSV manifest or an image folder")
    shards = [root] if root.suffix.lower() == ".parquet" else sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if shards:
        return _parquet_table(shards, cache_units)
    return _file_table(root)


def _parquet_table(shards: Sequence[Path], cache_units: int) -> ImageTable:
    parts, locations = [], []
    for index, shard in enumerate(shards):
        frame, location = _shard_labels(shard, index)
        parts.append(frame)
        locations.append(location)
    labels = _check_labels(pd.concat(parts, ignore_index=True), shards[0].parent)
    return ImageTable(labels, shards=shards, locations=np.concatenate(locations), root=shards[0].parent, cache_units=cache_units)


def _shard_labels(shard: Path, index: int) -> tuple[pd.DataFrame, np.ndarray]:
    """One shard's label columns (the image column's bytes are not read) and each row's location."""
    handle = open_parquet_shard(shard)
    names = handle.schema_arrow.names
    wanted = [c for c in LABEL_COLUMNS if c in names]
    _, path_column = image_columns(handle.schema_arrow)
    table = handle.read(columns=wanted + ([path_column] if path_column else []))
    frame = pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False) for c in wanted})
    if "id" not in frame:
        paths = image_field(table, path_column)
        paths = paths.to_pylist() if paths is not None else [None] * table.num_rows
        frame["id"] = [p or f"{shard.stem}-{i}" for i, p in enumerate(paths)]
    groups, offsets = row_positions(handle)
    return frame, np.column_stack([np.full(len(groups), index), groups, offsets]).astype(np.int64)


def _file_table(root: Path) -> ImageTable:
    from aiornot.io import datasets

    try:
        frame = datasets.load(root)  # CSV manifests and class folders: file names only, nothing decoded
    except DatasetError:
        frame = _unlabelled_folder(root)
    if frame["id"].duplicated().any():  # e.g. real/1.jpg and ai/1.jpg: the path is the identity
        frame["id"] = frame["path"].astype(str)
    columns = [c for c in (*LABEL_COLUMNS, "path") if c in frame.columns]
    return ImageTable(_check_labels(frame[columns], root), root=root if root.is_dir() else root.parent)


def _unlabelled_folder(root: Path) -> pd.DataFrame:
    if not root.is_dir():
        raise DatasetError(f"{root}: expected Parquet shards, a CSV manifest or a folder of images")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return pd.DataFrame({"id": [os.path.relpath(f, root) for f in files], "label": UNLABELLED, "path": files})


def _check_labels(frame: pd.DataFrame, where: Path) -> pd.DataFrame:
    if frame.empty:
        raise DatasetError(f"{where}: the dataset has no rows")
    frame = frame.copy()
    for column in LABEL_COLUMNS:
        if column not in frame:
            frame[column] = UNLABELLED if column == "label" else None
    labels = pd.to_numeric(frame["label"], errors="coerce").fillna(UNLABELLED)
    bad = frame.loc[~labels.isin([0, 1, UNLABELLED]), "label"]
    if not bad.empty:
        examples = ", ".join(repr(v) for v in bad.unique()[:5])
        raise DatasetError(f"{where}: labels must be 0 (camera photo) or 1 (AI-generated); found {examples} in {len(bad)} rows")
    frame["label"] = labels.astype(int)
    frame["id"] = frame["id"].astype(str)
    return frame


# ------------------------------------------------------------------------------------ the split
def split_labels(labels: pd.DataFrame, *, validation_fraction: float = SEED_VALIDATION_FRACTION, seed: int = 42,
                 group_column: str | None = "source") -> Split:
    """The seed's split from the label (and source) columns alone: nothing is decoded.

    Ungrouped, it is :func:`aiornot.io.datasets.split` (18,618 rows → exactly 13,032 / 5,586, class ratio
    kept). When ``group_column`` exists and is filled, whole groups go to one side and the sizes are
    still exact whenever some subset of groups adds up to them (see :func:`exact_grouped_rows`).
    """
    from aiornot.io import datasets

    if "label" not in labels.columns:
        raise DatasetError(f"no 'label' column; columns are {list(labels.columns)}")
    if (labels["label"] == UNLABELLED).any():
        raise DatasetError(f"{int((labels['label'] == UNLABELLED).sum())} rows have no label; only labelled rows can be split")
    grouped = group_column is not None and group_column in labels.columns and labels[group_column].notna().all()
    if not grouped:
        return datasets.split(labels[["label"]], validation_fraction=validation_fraction, seed=seed, group_column=None)
    validation = exact_grouped_rows(labels[group_column].astype(str).to_numpy(), labels["label"].to_numpy(),
                                    validation_fraction, seed)
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[validation] = True
    return Split(train=np.flatnonzero(~chosen), validation=np.flatnonzero(chosen))


def exact_grouped_rows(groups: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Validation rows made of whole groups: per class, exactly ``round(fraction × rows)`` when possible.

    A group counts toward its majority class. Per class, groups are shuffled (seeded) and a subset
    whose sizes add up to the class's target is found by subset sum (bitsets), so a single large
    group cannot push the sizes off; if no subset adds up exactly, the closest smaller total is used.
    """
    frame = pd.DataFrame({"group": groups, "label": labels})
    sizes = frame.groupby("group").size()
    majority = frame.groupby("group")["label"].agg(lambda s: int(s.mode().iloc[0]))
    targets = _class_targets(sizes.groupby(majority).sum(), fraction)
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for label, target in targets.items():
        names = majority.index[majority == label].to_numpy()
        names = names[rng.permutation(len(names))]
        chosen.extend(names[_subset_with_sum(sizes[names].to_numpy(), target)])
    return np.flatnonzero(np.isin(groups, chosen))


def _class_targets(class_sizes: pd.Series, fraction: float) -> dict[int, int]:
    """Per-class validation counts that add up to ``round(fraction × total)`` (largest remainder)."""
    total = int(round(fraction * class_sizes.sum()))
    exact = class_sizes * fraction
    counts = np.floor(exact).astype(int)
    for label in (exact - counts).sort_values(ascending=False).index[: total - int(counts.sum())]:
        counts[label] += 1
    return {int(k): int(v) for k, v in counts.items()}


def _subset_with_sum(sizes: np.ndarray, target: int) -> np.ndarray:
    """Indices of ``sizes`` whose sum is ``target`` (or the largest reachable sum below it)."""
    mask = (1 << (target + 1)) - 1
    reachable = [1]  # bit s set: some subset of the first i groups sums to s
    for size in sizes:
        reachable.append((reachable[-1] | (reachable[-1] << int(size))) & mask)
    total = reachable[-1].bit_length() - 1  # the largest reachable sum ≤ target
    picked = []
    for index in range(len(sizes) - 1, -1, -1):
        if not (reachable[index] >> total) & 1:  # not reachable without this group: take it
            picked.append(index)
            total -= int(sizes[index])
    return np.asarray(picked[::-1], dtype=int)


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
    them out), plus one flat ``score_<expert>`` column per expert. Read with :func:`read_scores`.
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
            _write_part(output, int(part[0]), _score_columns(table, part, results, digests))
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


def _score_columns(table: ImageTable, rows: np.ndarray, results: list["Result"], digests: list) -> "pa.Table":
    import pyarrow as pa

    from aiornot.io.result_rows import result_to_row, row_schema

    records = [result_to_row(r) for r in results]
    frame = pa.Table.from_pylist(records, schema=row_schema())
    experts = sorted({name for r in results for name in (r.experts or {})})
    extra = {
        "id": pa.array(table.labels["id"].to_numpy()[rows].astype(str)),
        "sha256": pa.array(digests, pa.string()),
        "label": pa.array(table.labels["label"].to_numpy()[rows].astype(np.int64)),
        **{f"score_{name}": pa.array([(r.experts or {}).get(name) for r in results], pa.float64()) for name in experts},
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
