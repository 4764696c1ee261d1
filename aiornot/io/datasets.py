"""Datasets as one DataFrame, and the train/validation split.

:func:`load` reads the three layouts users have:

1. the Hugging Face ``competitions/aiornot`` data — Parquet shards (``id``, ``image`` struct with
   ``bytes``/``path``, ``label``) or the competition's ``train.csv`` beside a ``train/`` folder;
2. an image folder with ``real/`` and ``ai/`` subfolders (also ``0_real/`` and ``1_fake/``);
3. a CSV manifest ``path,label[,source,generator]`` (the sample dataset's ``manifest.csv`` too).

Every loader returns the same columns (see :data:`COLUMNS`): ``label`` (0 = camera, 1 = AI),
``path`` or ``parquet_location``, and ``source``/``generator``/``family`` when known. Wrong layouts
raise :class:`DatasetError` naming the path and what was expected.

A Parquet dataset's frame holds no image bytes, only where each image lives
(``parquet_location``, ``"<shard>::<row group>::<offset>"``) and its size in bytes
(``file_size``); :func:`image_source` reads the bytes on demand, a row group at a time through a
small cache, so a frame of the seed's 62k images stays megabytes, not gigabytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from aiornot.io.decode import ImageDecodeError, open_image
from aiornot.io.parquet import RowGroupReader, format_location, image_columns, image_field, parse_location

if TYPE_CHECKING:
    import pyarrow.parquet as pq

#: Columns every loaded dataset has (``None`` where unknown). ``parquet_location`` is where a
#: Parquet row's image bytes live (see :func:`image_source`); ``path`` is a file on disk, or for
#: Parquet the original file name the shard recorded.
COLUMNS = ("path", "parquet_location", "label", "source", "generator", "family", "id")
#: Columns read from a Parquet shard besides ``image`` (those present).
PARQUET_COLUMNS = ("id", "label", "source", "generator")
#: Row groups :func:`image_source` keeps in memory, and about how many bytes of them at most
#: (encoded image files, not pixels), so memory stays bounded whatever the dataset's size.
PARQUET_CACHE_UNITS = 4
PARQUET_CACHE_BYTES = 256 * 2**20
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
# Folder names for the two classes, in the conventions users bring (CNNDetection/UnivFD: 0_real/1_fake).
REAL_DIRS = ("real", "0_real", "camera", "human")
AI_DIRS = ("ai", "1_fake", "fake", "generated", "synthetic")
#: Container facts :func:`check_images` adds (never inputs to the CNN).
FACT_COLUMNS = ("width", "height", "format", "file_size", "jpeg_quality", "has_exif", "mode")
#: The seed study's split: 18,618 training images → 13,032 train / 5,586 validation.
SEED_VALIDATION_FRACTION = 5586 / 18618


class DatasetError(ValueError):
    """A dataset whose layout or content is not what aiornot can read."""


@dataclass(frozen=True)
class Split:
    """Index arrays into a DataFrame: rows for training and rows held out for validation/testing."""

    train: np.ndarray
    validation: np.ndarray

    def frames(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The two parts of ``frame`` (re-indexed from 0)."""
        return (frame.iloc[self.train].reset_index(drop=True), frame.iloc[self.validation].reset_index(drop=True))


# --------------------------------------------------------------------------------------- loading
def load(path: str | Path) -> pd.DataFrame:
    """Load a dataset from a Parquet file/folder, a CSV manifest, or a real/ai image folder.

    Returns a DataFrame with :data:`COLUMNS`; ``label`` is an ``int`` 0/1. Raises
    :class:`DatasetError` with the path and the expected layout when it cannot be read.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root} does not exist; pass a folder with real/ and ai/ subfolders, a CSV manifest or Parquet files")
    if root.is_file():
        frame = _load_file(root)
    else:
        frame = _load_folder(root)
    return _normalise(frame, root)


def _load_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _load_parquet([path])
    if suffix == ".csv":
        return _load_csv(path)
    raise DatasetError(f"{path}: expected a .csv manifest or a .parquet file, got '{suffix or 'no extension'}'")


def _load_folder(root: Path) -> pd.DataFrame:
    shards = sorted(root.rglob("*.parquet"))
    if shards:
        return _load_parquet(shards)
    for manifest in ("manifest.csv", "train.csv"):
        if (root / manifest).is_file():
            return _load_csv(root / manifest)
    class_dirs = _class_folders(root)
    if class_dirs:
        return _load_image_folders(class_dirs)
    raise DatasetError(
        f"{root}: no dataset found. Expected one of: Parquet shards (Hugging Face aiornot), "
        f"manifest.csv / train.csv, or subfolders {REAL_DIRS[0]}/ and {AI_DIRS[0]}/ "
        f"(also {REAL_DIRS[1]}/ and {AI_DIRS[1]}/)"
    )


def _load_parquet(shards: Sequence[Path]) -> pd.DataFrame:
    return pd.concat([_parquet_rows(shard) for shard in shards], ignore_index=True)


def open_parquet_shard(shard: Path, *, need_label: bool = False) -> "pq.ParquetFile":
    """An open Parquet shard with an ``image`` column (and ``label`` when ``need_label``).

    Raises :class:`DatasetError` naming the shard when it is not Parquet or lacks a column.
    """
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(shard)
    except Exception as error:  # pyarrow raises several types for a broken file
        raise DatasetError(f"{shard}: not a readable Parquet file ({error})") from error
    names = handle.schema_arrow.names
    if "image" not in names:
        raise DatasetError(f"{shard}: no 'image' column; columns are {names} (expected id, image, label)")
    if need_label and "label" not in names:
        raise DatasetError(f"{shard}: no 'label' column (the aiornot test split is unlabelled and cannot be evaluated)")
    return handle


def _parquet_rows(shard: Path) -> pd.DataFrame:
    """One shard's rows: metadata, the image's original path and size, and where its bytes live.

    Read a row group at a time, so at most one row group's image bytes are in memory (they are
    read only to measure each image, then dropped).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    handle = open_parquet_shard(shard, need_label=True)
    wanted = [c for c in PARQUET_COLUMNS if c in handle.schema_arrow.names]
    bytes_column, path_column = image_columns(handle.schema_arrow)
    # Absolute, so the location still works after a notebook or worker changes directory.
    where = os.path.abspath(shard)
    pieces, locations = [], []
    for group in range(handle.num_row_groups):
        try:
            table = handle.read_row_group(group, columns=wanted + [c for c in (bytes_column, path_column) if c])
        except Exception as error:  # a damaged row group: say so now, not halfway through training
            raise DatasetError(f"{shard}: row group {group} is not a readable Parquet row group ({error})") from error
        images, paths = image_field(table, bytes_column), image_field(table, path_column)
        sizes = pc.fill_null(pc.binary_length(images), 0) if images is not None else pa.repeat(0, table.num_rows)
        pieces.append(pa.table({**{c: table.column(c) for c in wanted},
                                "path": paths if paths is not None else pa.nulls(table.num_rows, pa.string()),
                                "file_size": sizes.cast(pa.int64())}))
        locations.extend(format_location(where, group, offset) for offset in range(table.num_rows))
        del table, images  # the bytes go before the next row group is read
    if not pieces:
        return pd.DataFrame(columns=[*wanted, "path", "file_size", "parquet_location"])
    frame = pa.concat_tables(pieces).to_pandas()
    frame["parquet_location"] = locations
    if "id" not in frame:  # as stream.open_table names them: the original file name, else shard and row
        frame["id"] = [p or f"{shard.stem}-{i}" for i, p in enumerate(frame["path"])]
    return frame


def _load_csv(manifest: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(manifest)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"{manifest}: not a readable CSV ({error})") from error
    if "label" not in table.columns:
        raise DatasetError(f"{manifest}: no 'label' column; columns are {list(table.columns)} (expected path,label[,source,generator])")
    if "path" not in table.columns:
        if "id" in table.columns:  # the competition's train.csv: id,label beside a train/ folder
            table = table.assign(path=[str(_competition_image(manifest.parent, name)) for name in table["id"]])
        else:
            raise DatasetError(f"{manifest}: no 'path' column; columns are {list(table.columns)} (expected path,label[,source,generator])")
    base = manifest.parent
    table = table.copy()
    table["path"] = [str(p) if Path(str(p)).is_absolute() else str(base / str(p)) for p in table["path"]]
    return table


def _competition_image(base: Path, name: object) -> Path:
    for folder in ("train", "images", "."):
        candidate = base / folder / str(name)
        if candidate.exists():
            return candidate
    return base / "train" / str(name)


def _class_folders(root: Path) -> dict[int, Path]:
    children = {child.name.lower(): child for child in root.iterdir() if child.is_dir()}
    found: dict[int, Path] = {}
    for label, names in ((0, REAL_DIRS), (1, AI_DIRS)):
        for name in names:
            if name in children:
                found[label] = children[name]
                break
    if found and len(found) < 2:
        missing = "an ai/ (or 1_fake/)" if 0 in found else "a real/ (or 0_real/)"
        raise DatasetError(f"{root}: found {next(iter(found.values())).name}/ but not {missing} folder; both classes are needed")
    return found


def _load_image_folders(class_dirs: dict[int, Path]) -> pd.DataFrame:
    rows = []
    for label, folder in sorted(class_dirs.items()):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DatasetError(f"{folder}: the folder is empty; put the {'AI-generated' if label else 'camera'} images there")
        for file in files:
            relative = file.relative_to(folder)
            # A subfolder (e.g. ai/stylegan2/x.png) names the generator and the source group.
            group = relative.parts[0] if len(relative.parts) > 1 else None
            rows.append({"path": str(file), "label": label, "generator": group, "source": None})
    return pd.DataFrame(rows)


def _normalise(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    if frame.empty:
        raise DatasetError(f"{root}: the dataset has no rows")
    frame = frame.copy()
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = frame.loc[labels.isna() | ~labels.isin([0, 1]), "label"]
    if not bad.empty:
        examples = ", ".join(repr(v) for v in bad.unique()[:5])
        raise DatasetError(f"{root}: labels must be 0 (camera photo) or 1 (AI-generated); found {examples} in {len(bad)} rows")
    frame["label"] = labels.astype(int)
    if frame["id"].isna().all():
        frame["id"] = [Path(str(p)).name if p else str(i) for i, p in enumerate(frame["path"])]
    ordered = list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS]
    return frame[ordered].reset_index(drop=True)


# ------------------------------------------------------------------------------------- checking
#: Reads Parquet rows' image bytes for :func:`image_source`: one per process, shared by threads.
_PARQUET_IMAGES = RowGroupReader(cache_units=PARQUET_CACHE_UNITS, cache_bytes=PARQUET_CACHE_BYTES)


def image_source(row: pd.Series | dict) -> bytes | str:
    """What to hand to :func:`aiornot.io.decode.open_image` for one dataset row: bytes or a path.

    A Parquet row (``parquet_location`` set) gives its image's bytes, read from the shard through
    a small row-group cache. A row with no image — no bytes and no existing file at ``path`` —
    raises :class:`~aiornot.io.decode.ImageDecodeError` with code ``no_image``.
    """
    location, path = _text(row.get("parquet_location")), _text(row.get("path"))
    if location is not None:
        data = parquet_image(location)
        if data:
            return data
        # Hugging Face may store a local file's path instead of its bytes; use it when it exists.
        if path is not None and os.path.isfile(path):
            return path
        raise ImageDecodeError("no_image", f"the Parquet row {location} has no image bytes")
    if path is None:
        raise ImageDecodeError("no_image", "the row has neither a Parquet location nor a path")
    return path


def parquet_image(location: str) -> bytes:
    """The image bytes at a ``parquet_location`` (``b""`` when the row has none).

    Raises :class:`~aiornot.io.decode.ImageDecodeError` when the shard is gone or unreadable, so
    :func:`check_images` reports the row rather than stopping.
    """
    shard, group, offset = parse_location(location)
    try:
        return _PARQUET_IMAGES.image(shard, group, offset)
    except FileNotFoundError as error:
        raise ImageDecodeError("not_found", f"no such Parquet shard: {shard}") from error
    except (OSError, ValueError, IndexError) as error:  # pyarrow's errors derive from these
        raise ImageDecodeError("corrupt", f"cannot read {location}: {error}") from error


def _text(value: object) -> str | None:
    """A non-empty string, or ``None`` for missing values (``None``, NaN after a CSV round trip, "")."""
    if value is None or (np.ndim(value) == 0 and not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value)
    return text or None


def check_images(frame: pd.DataFrame, *, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every image once; return ``(readable_rows, skipped)``.

    ``skipped`` has one row per unreadable image with ``path``, ``label``, ``code`` and ``reason``,
    so nothing is dropped silently: callers print or report it (see :func:`skipped_summary`).
    Readable rows gain the container facts of :data:`FACT_COLUMNS` (format, size, JPEG quality,
    EXIF present, colour mode) — what notebook 01 and the shortcut audit look at.
    """
    from tqdm import tqdm

    keep, facts, skipped = [], [], []
    for index, row in tqdm(frame.iterrows(), total=len(frame), desc="checking images", disable=not progress, unit="img"):
        try:
            decoded = open_image(image_source(row))
        except ImageDecodeError as error:
            skipped.append({"path": row.get("path") or row.get("id"), "label": row["label"], "code": error.code, "reason": error.message})
            continue
        keep.append(index)
        facts.append({"width": decoded.width, "height": decoded.height, "format": decoded.format,
                      "file_size": decoded.file_size, "jpeg_quality": decoded.jpeg_quality,
                      "has_exif": decoded.has_exif, "mode": decoded.original_mode})
    readable = frame.loc[keep].reset_index(drop=True)
    for column in FACT_COLUMNS:
        readable[column] = [fact[column] for fact in facts]
    return readable, pd.DataFrame(skipped, columns=["path", "label", "code", "reason"])


def skipped_summary(skipped: pd.DataFrame) -> str:
    """One line per reason, e.g. ``3 skipped: 2 corrupt, 1 empty``; ``nothing skipped`` if none."""
    if skipped.empty:
        return "nothing skipped: every image decoded"
    counts = skipped["code"].value_counts()
    parts = ", ".join(f"{count} {code}" for code, count in counts.items())
    return f"{len(skipped)} skipped ({parts})"


# ---------------------------------------------------------------------------------------- split
def split(
    frame: pd.DataFrame,
    *,
    validation_fraction: float = SEED_VALIDATION_FRACTION,
    seed: int = 42,
    group_column: str | None = "source",
    strata_column: str | None = "portrait",
) -> Split:
    """A deterministic, stratified train/validation split.

    With the seed's defaults, 18,618 rows become 13,032 / 5,586 with the class ratio kept. When
    ``group_column`` exists and is filled, the split is grouped: every group lands wholly on one
    side, so a detector cannot pass by recognising a photo, person or generator batch it saw.
    When ``strata_column`` exists (the sample's ``portrait`` flag), each class is also split
    within each stratum, so the scarce real portraits reach the held-out side too.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    if "label" not in frame.columns:
        raise DatasetError("the frame has no 'label' column")
    labels = frame["label"].to_numpy()
    if len(np.unique(labels)) < 2:
        raise DatasetError("a split needs both classes; the data has only label " + str(labels[0] if len(labels) else "(none)"))
    strata = content_strata(frame, strata_column)
    use_groups = group_column is not None and group_column in frame.columns and frame[group_column].notna().all()
    if use_groups:
        validation = _grouped_validation_rows(frame[group_column].astype(str).to_numpy(), labels, strata, validation_fraction, seed)
    else:
        validation = _stratified_validation_rows(labels * 2 + strata, validation_fraction, seed)
    is_validation = np.zeros(len(frame), dtype=bool)
    is_validation[validation] = True
    return Split(train=np.flatnonzero(~is_validation), validation=np.flatnonzero(is_validation))


def content_strata(frame: pd.DataFrame, column: str | None = "portrait") -> np.ndarray:
    """0/1 stratum per row from a boolean-like column (the sample's ``portrait`` flag); all zeros
    when the column is absent or incomplete. Used by the split and by stratum-balanced training."""
    if column is None or column not in frame.columns or frame[column].isna().any():
        return np.zeros(len(frame), dtype=int)
    return frame[column].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy().astype(int)


def _stratified_validation_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    # An integer count, so float rounding cannot turn 5,586 into 5,587.
    count = int(round(fraction * len(labels)))
    _, validation = train_test_split(rows, test_size=count, stratify=labels, random_state=seed)
    return np.sort(validation)


def _grouped_validation_rows(groups: np.ndarray, labels: np.ndarray, strata: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Assign whole groups to validation, per (class, stratum) cell, until each cell reaches its share.

    Groups are visited in a seeded random order; a group whose rows are mixed counts toward its
    majority class and stratum. This keeps the class ratio, the strata and the group boundary.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"group": groups, "cell": labels * 2 + strata})
    group_cell = frame.groupby("group")["cell"].agg(lambda s: int(s.mode().iloc[0]))
    group_size = frame.groupby("group").size()
    chosen: list[str] = []
    for cell in sorted(group_cell.unique()):
        names = group_cell.index[group_cell == cell].to_numpy()
        names = names[rng.permutation(len(names))]
        target = fraction * group_size[names].sum()
        taken = 0
        for name in names:
            if taken >= target:
                break
            # Skip a group that would overshoot the share by half (one big group must not take it all).
            if taken > 0 and taken + group_size[name] > target * 1.5:
                continue
            chosen.append(name)
            taken += group_size[name]
    return np.flatnonzero(np.isin(groups, chosen))


def three_way_split(frame: pd.DataFrame, *, test_fraction: float = SEED_VALIDATION_FRACTION,
                    validation_fraction: float = 0.15, seed: int = 42) -> pd.DataFrame:
    """Add a ``split`` column: ``train`` / ``validation`` / ``test``, grouped by source when known.

    ``test`` is held out as the seed held out its 5,586 images (30 %); ``validation`` is then
    taken from the rest for early stopping, calibration and thresholds, so the test numbers are
    never tuned on.
    """
    outer = split(frame, validation_fraction=test_fraction, seed=seed)
    rest = frame.iloc[outer.train]
    inner = split(rest, validation_fraction=validation_fraction, seed=seed + 1)
    labelled = frame.copy()
    labelled["split"] = "test"
    labelled.iloc[outer.train[inner.train], labelled.columns.get_loc("split")] = "train"
    labelled.iloc[outer.train[inner.validation], labelled.columns.get_loc("split")] = "validation"
    return labelled


def subsample(frame: pd.DataFrame, max_images: int | None, *, seed: int = 42) -> pd.DataFrame:
    """At most ``max_images`` rows, keeping the class ratio and whole source groups (deterministic)."""
    if not max_images or len(frame) <= max_images:
        return frame.reset_index(drop=True)
    fraction = max_images / len(frame)
    parts = split(frame, validation_fraction=fraction, seed=seed)
    return frame.iloc[parts.validation].reset_index(drop=True)


def prepare_split(
    path: str | Path,
    max_images: int | None,
    seed: int = 42,
    *,
    saved_splits: str | Path | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The notebooks' prologue: load, subsample, check every image, split three ways.

    Returns ``(labelled, skipped)``: the readable rows with their ``split`` column
    (:func:`three_way_split`) and the unreadable ones (:func:`check_images`). With
    ``saved_splits`` (the ``splits.csv`` notebook 02 writes), the split is compared with it row
    by row and a :class:`DatasetError` says so when they differ — a notebook must not evaluate
    rows its model trained on.
    """
    frame = subsample(load(path), max_images, seed=seed)
    frame, skipped = check_images(frame, progress=progress)
    labelled = three_way_split(frame, seed=seed)
    if saved_splits is not None:
        check_saved_split(labelled, saved_splits)
    return labelled, skipped


def check_saved_split(labelled: pd.DataFrame, saved_splits: str | Path) -> None:
    """Raise :class:`DatasetError` unless ``labelled`` has the rows and ``split`` of ``saved_splits``."""
    saved_path = Path(saved_splits)
    if not saved_path.is_file():
        raise DatasetError(f"{saved_path} does not exist; run notebook 02 (it writes splits.csv) with the same output_dir first")
    saved = pd.read_csv(saved_path)
    advice = "run notebook 02 again, or pass the data_path, max_images and seed it was run with"
    if "split" not in saved.columns:
        raise DatasetError(f"{saved_path}: no 'split' column; it is not a splits.csv written by notebook 02")
    if len(saved) != len(labelled):
        raise DatasetError(f"the split differs from the saved one in {saved_path}: {len(labelled)} rows here, "
                           f"{len(saved)} saved; {advice}")
    differ = int((labelled["split"].to_numpy() != saved["split"].to_numpy()).sum())
    if differ:
        raise DatasetError(f"the split differs from the saved one in {saved_path}: {differ} of {len(saved)} rows "
                           f"are on another side; {advice}")


def class_balance(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The seed's balance table: images, class 0 %, class 1 % for each named split."""
    rows = []
    for name, part in frames.items():
        total = len(part)
        share = part["label"].value_counts(normalize=True) if total else pd.Series(dtype=float)
        rows.append({"split": name, "images": total, "class 0 (real) %": 100 * share.get(0, 0.0), "class 1 (AI) %": 100 * share.get(1, 0.0)})
    return pd.DataFrame(rows).set_index("split").round(1)
