"""Datasets as one DataFrame, and the one train/validation split.

:func:`load` reads every labelled layout of :mod:`aiornot.io.reader` — Hugging Face Parquet shards,
the competition's ``train.csv`` beside a ``train/`` folder, a ``real/``/``ai/`` image folder, a CSV
manifest ``path,label[,source,generator]`` — into one frame with the same columns (see
:data:`COLUMNS`): ``label`` (0 = camera, 1 = AI), ``path`` or ``parquet_location``, and
``source``/``generator``/``family`` when known. Wrong layouts raise :class:`DatasetError` naming the
path and what was expected.

A Parquet dataset's frame holds no image bytes, only where each image lives
(``parquet_location``, ``"<shard>::<row group>::<offset>"``) and its size in bytes
(``file_size``); :func:`image_source` reads the bytes on demand, a row group at a time through a
small cache, so a frame of the seed's 62k images stays megabytes, not gigabytes.

:func:`split` is the one split: the notebooks' (:func:`prepare_split`) and the full run's
(:func:`aiornot.apps.full_run.split_rows`), its sizing policy documented there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aiornot.io.decode import ImageDecodeError, open_image
from aiornot.io.parquet import RowGroupReader, format_location, parse_location
from aiornot.io.reader import UNLABELLED, DatasetError, checked_labels, file_ids, file_rows, parquet_rows, parquet_shards

#: Columns every loaded dataset has (``None`` where unknown). ``parquet_location`` is where a
#: Parquet row's image bytes live (see :func:`image_source`); ``path`` is a file on disk, or for
#: Parquet the original file name the shard recorded.
COLUMNS = ("path", "parquet_location", "label", "source", "generator", "family", "id")
#: Row groups :func:`image_source` keeps in memory, and about how many bytes of them at most
#: (encoded image files, not pixels), so memory stays bounded whatever the dataset's size.
PARQUET_CACHE_UNITS = 4
PARQUET_CACHE_BYTES = 256 * 2**20
#: Container facts :func:`check_images` adds (never inputs to the CNN).
FACT_COLUMNS = ("width", "height", "format", "file_size", "jpeg_quality", "has_exif", "mode")
#: The seed study's split: 18,618 training images → 13,032 train / 5,586 validation.
SEED_VALIDATION_FRACTION = 5586 / 18618


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
    shards = parquet_shards(root)
    return _normalise(_parquet_frame(shards) if shards else file_rows(root), root)


def _parquet_frame(shards: list[Path]) -> pd.DataFrame:
    """The shards' rows, each with its image's size and its ``parquet_location`` (bytes read once, to measure)."""
    parts = []
    for shard in shards:
        frame, positions, _ = parquet_rows(shard, required=("label",), measure=True)
        where = os.path.abspath(shard)  # absolute, so a location still works after a notebook or worker changes directory
        frame["parquet_location"] = [format_location(where, group, offset) for group, offset in positions]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _normalise(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    labels = checked_labels(frame, root)
    frame = frame.copy()
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["label"] = labels
    frame["id"] = file_ids(frame)
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
    exact: bool = False,
    require_both_sides: bool = True,
) -> Split:
    """The one train/validation split: deterministic, stratified, grouped by source when known.

    Rows fall into cells of (class, stratum), the stratum from ``strata_column`` (the sample's
    ``portrait`` flag, so the scarce real portraits reach the held-out side too; one stratum without
    it), and each cell gives about ``validation_fraction`` of its rows to validation.

    * Ungrouped (``group_column`` absent or not filled on every row): seeded stratified sampling of
      exactly ``round(fraction × rows)`` rows — with the seed's defaults, 18,618 rows become
      13,032 / 5,586 with the class ratio kept.
    * Grouped: every group lands wholly on one side, so a detector cannot pass by recognising a
      photo, person or generator batch it saw. A group counts toward its majority cell; each
      cell's groups are visited in a seeded random order. How many are taken is the one choice:

      - ``exact=False`` (the notebooks' split of ``data/sample``, frozen because the shipped model
        was trained on it): groups are taken in order until the cell reaches its share, passing
        over a group that would overshoot it by half, so a cell may end up to a group above it;
      - ``exact=True`` (the full run): the groups whose sizes add up to exactly the ungrouped
        counts (per cell, by largest remainder, totalling ``round(fraction × rows)``) are found
        by subset sum, so one large group cannot push the sizes off; where no set of whole groups
        adds up, the closest smaller total.

    Raises :class:`DatasetError` for missing or unlabelled rows, for a single class, and (unless
    ``require_both_sides`` is off, as for :func:`subsample`, which keeps one side only) when a class
    would end up wholly on one side: too few images, or too few source groups, to split.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    cells = _labels_to_split(frame) * 2 + content_strata(frame, strata_column)
    if group_column is not None and group_column in frame.columns and frame[group_column].notna().all():
        groups = frame[group_column].astype(str).to_numpy()
        validation = _grouped_validation_rows(groups, cells, validation_fraction, seed, exact=exact)
    else:
        groups = None
        validation = _stratified_validation_rows(cells, validation_fraction, seed)
    is_validation = np.zeros(len(frame), dtype=bool)
    is_validation[validation] = True
    if require_both_sides:
        _require_both_sides(cells // 2, is_validation, groups, group_column)
    return Split(train=np.flatnonzero(~is_validation), validation=np.flatnonzero(is_validation))


def _require_both_sides(labels: np.ndarray, is_validation: np.ndarray, groups: np.ndarray | None,
                        group_column: str | None) -> None:
    """A :class:`DatasetError` when a class ends up wholly on one side (nothing to train on, or nothing to check)."""
    for label, kind in ((0, "camera"), (1, "AI")):
        of_class = labels == label
        for side, on_side in (("training", ~is_validation), ("validation", is_validation)):
            if (of_class & on_side).any():
                continue
            if groups is None:
                raise DatasetError(f"the split left no {kind} images for {side}; add images of that class")
            count = len(np.unique(groups[of_class]))
            raise DatasetError(
                f"the split by '{group_column}' left no {kind} images for {side}: they come from {count} "
                f"'{group_column}' group{'s' if count != 1 else ''}, and a group never straddles the two sides; "
                f"add {kind} images from more sources, or leave '{group_column}' empty to split image by image")


def _labels_to_split(frame: pd.DataFrame) -> np.ndarray:
    """The 0/1 labels of ``frame``; a clear error when a row has none or only one class is present."""
    if "label" not in frame.columns:
        raise DatasetError(f"no 'label' column; columns are {list(frame.columns)}")
    labels = frame["label"].to_numpy()
    unlabelled = int((labels == UNLABELLED).sum())
    if unlabelled:
        raise DatasetError(f"{unlabelled} rows have no label; only labelled rows can be split")
    if len(np.unique(labels)) < 2:
        raise DatasetError("a split needs both classes; the data has only label " + str(labels[0] if len(labels) else "(none)"))
    return labels


def content_strata(frame: pd.DataFrame, column: str | None = "portrait") -> np.ndarray:
    """0/1 stratum per row from a boolean-like column (the sample's ``portrait`` flag); all zeros
    when the column is absent or incomplete. Used by the split and by stratum-balanced training."""
    if column is None or column not in frame.columns or frame[column].isna().any():
        return np.zeros(len(frame), dtype=int)
    return frame[column].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy().astype(int)


def _stratified_validation_rows(cells: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(cells))
    # An integer count, so float rounding cannot turn 5,586 into 5,587.
    count = int(round(fraction * len(cells)))
    cells = _splittable_cells(cells, count)
    _, validation = train_test_split(rows, test_size=count, stratify=cells, random_state=seed)
    return np.sort(validation)


def _splittable_cells(cells: np.ndarray, validation_count: int) -> np.ndarray:
    """``cells`` if a stratified split can honour them, else the classes alone (a stratum of one row cannot be
    spread over two sides); a :class:`DatasetError` that says why when even the classes cannot be split."""
    present = np.bincount(cells)[np.unique(cells)]
    usable = cells if present.min() >= 2 else cells // 2  # cells are label × 2 + stratum
    per_class = np.bincount(cells // 2, minlength=2)
    kinds = len(np.unique(usable))
    if per_class.min() < 2 or not kinds <= validation_count <= len(cells) - kinds:
        raise DatasetError(
            f"too few images to split into training and validation: {per_class[0]} camera and {per_class[1]} AI "
            f"images; each class needs at least 2, and a validation share of {validation_count} rows needs at least "
            f"{kinds} (one per class) and must leave as many for training; add images or change validation_fraction")
    return usable


def _grouped_validation_rows(groups: np.ndarray, cells: np.ndarray, fraction: float, seed: int, *, exact: bool) -> np.ndarray:
    """Rows of the whole groups :func:`split` sends to validation (see its policy)."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"group": groups, "cell": cells})
    group_cell = rows.groupby("group")["cell"].agg(lambda s: int(s.mode().iloc[0]))
    group_size = rows.groupby("group").size()
    cell_rows = group_size.groupby(group_cell).sum()
    targets = _exact_counts(cell_rows, fraction) if exact else {cell: fraction * count for cell, count in cell_rows.items()}
    chosen: list[str] = []
    for cell, target in targets.items():
        names = group_cell.index[group_cell == cell].to_numpy()
        names = names[rng.permutation(len(names))]
        sizes = group_size[names].to_numpy()
        chosen.extend(names[_groups_adding_up_to(sizes, target) if exact else _groups_filling(sizes, target)])
    return np.flatnonzero(np.isin(groups, chosen))


def _groups_filling(sizes: np.ndarray, share: float) -> np.ndarray:
    """Indices of the groups taken in order until ``share`` rows are reached; a group that would
    overshoot the share by half is passed over (one big group must not take it all)."""
    picked, taken = [], 0
    for index, size in enumerate(sizes):
        if taken >= share:
            break
        if taken > 0 and taken + size > share * 1.5:
            continue
        picked.append(index)
        taken += size
    return np.asarray(picked, dtype=int)


def _exact_counts(cell_rows: pd.Series, fraction: float) -> dict[int, int]:
    """Per-cell validation counts that add up to ``round(fraction × total)`` (largest remainder)."""
    total = int(round(fraction * cell_rows.sum()))
    exact = cell_rows * fraction
    counts = np.floor(exact).astype(int)
    for cell in (exact - counts).sort_values(ascending=False).index[: total - int(counts.sum())]:
        counts[cell] += 1
    return {int(k): int(v) for k, v in counts.items()}


def _groups_adding_up_to(sizes: np.ndarray, target: int) -> np.ndarray:
    """Indices of ``sizes`` whose sum is ``target`` (or the largest reachable sum below it), found
    with bitsets; earlier groups are preferred, so the seeded order decides among equal sums."""
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


def three_way_split(frame: pd.DataFrame, *, test_fraction: float = SEED_VALIDATION_FRACTION,
                    validation_fraction: float = 0.15, seed: int = 42, exact: bool = False) -> pd.DataFrame:
    """Add a ``split`` column: ``train`` / ``validation`` / ``test``, grouped by source when known.

    ``test`` is held out as the seed held out its 5,586 images (30 %); ``validation`` is then
    taken from the rest (seeded ``seed + 1``, so its shuffle is not the outer one's) for early
    stopping, calibration and thresholds, so the test numbers are never tuned on. Both are
    :func:`split`, sized by ``exact`` as it documents.
    """
    outer = split(frame, validation_fraction=test_fraction, seed=seed, exact=exact)
    rest = frame.iloc[outer.train]
    inner = split(rest, validation_fraction=validation_fraction, seed=seed + 1, exact=exact)
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
    parts = split(frame, validation_fraction=fraction, seed=seed, require_both_sides=False)
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
