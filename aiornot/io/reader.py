"""One reader for every dataset layout: labels and metadata without pixels, image bytes on demand.

The layouts users bring:

1. the Hugging Face ``competitions/aiornot`` data — Parquet shards (``id``, ``image`` struct with
   ``bytes``/``path``, ``label``), a ``.parquet`` file or a folder holding them at any depth;
2. the competition's ``train.csv`` (``id,label``) beside a ``train/`` folder, or any CSV manifest
   ``path,label[,source,generator,…]`` (the sample dataset's ``manifest.csv``);
3. an image folder with ``real/`` and ``ai/`` subfolders (also ``0_real/`` and ``1_fake/``), a
   subfolder below them naming the generator;
4. for :func:`open_table` only, a plain folder of unlabelled images (the competition's test split).

:func:`parquet_shards` is the one place that decides whether a path is Parquet. :func:`open_table`
reads any layout into an :class:`ImageTable`: the label table, and where each row's image lives;
the image column of a shard is never read there. :func:`parquet_rows` and :func:`file_rows` are
the two halves it is built from, which :func:`aiornot.io.datasets.load` shares. Wrong layouts raise
:class:`DatasetError` naming the path and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import pandas as pd

from aiornot.io.parquet import RowGroupReader, image_columns, image_field, row_positions

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

#: File names taken as images inside folders. HEIC/HEIF are taken too although the decoder refuses them: a
#: folder of iPhone photos then gets an error line for each, not a silent skip.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".gif",
                  ".heic", ".heif"}
# Folder names for the two classes, in the conventions users bring (CNNDetection/UnivFD: 0_real/1_fake).
REAL_DIRS = ("real", "0_real", "camera", "human")
AI_DIRS = ("ai", "1_fake", "fake", "generated", "synthetic")
#: The columns of a label table (``label`` is -1 where the dataset has none, e.g. the test split).
LABEL_COLUMNS = ("id", "label", "source", "generator")
#: Label value of an unlabelled row.
UNLABELLED = -1
#: Parquet row groups each :class:`ImageTable` keeps in memory (compressed bytes, not pixels).
DEFAULT_CACHE_UNITS = 16
#: Parquet shards each :class:`ImageTable` keeps open at once.
OPEN_SHARDS = 2
# Why a shard must have a column, for the error that says it lacks one.
_NEEDED_FOR = {
    "image": "expected id, image, label",
    "label": "the aiornot test split is unlabelled and cannot be evaluated",
    "id": "expected the Hugging Face layout: id, image, label; the id is each line's key for resuming",
}


class DatasetError(ValueError):
    """A dataset whose layout or content is not what aiornot can read."""


# ------------------------------------------------------------------------- is this Parquet?
def parquet_shards(path: str | Path) -> list[Path]:
    """The Parquet shards of ``path``: the file itself, or every ``*.parquet`` under a folder (sorted).

    Empty when ``path`` holds none. The folder is walked with an explicit stack, so a tree of any
    depth is fine; links to folders are not followed.
    """
    root = Path(path)
    if root.is_file():
        return [root] if _is_parquet_name(root.name) else []
    return sorted(Path(name) for name in _shard_names(root)) if root.is_dir() else []


def is_parquet_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a ``.parquet`` file or a folder holding Parquet shards (stops at the first found)."""
    root = Path(path)
    if root.is_file():
        return _is_parquet_name(root.name)
    return root.is_dir() and next(_shard_names(root), None) is not None


def _shard_names(folder: Path) -> Iterator[str]:
    from aiornot.io.walk import walk_files  # iterative: rglob recursed once per level (RecursionError near 1,000)

    return (entry for entry in walk_files(folder, follow_links=False) if isinstance(entry, str) and _is_parquet_name(entry))


def _is_parquet_name(name: str) -> bool:
    return name.lower().endswith(".parquet")


# --------------------------------------------------------------------------- Parquet rows
def open_parquet_shard(shard: Path, *, required: Iterable[str] = ("image",)) -> "pq.ParquetFile":
    """An open Parquet shard that has the ``required`` columns (``image`` at least).

    Raises :class:`DatasetError` naming the shard when it is not Parquet or lacks a column.
    """
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(shard)
    except Exception as error:  # pyarrow raises several types for a broken file
        raise DatasetError(f"{shard}: not a readable Parquet file ({error})") from error
    names = handle.schema_arrow.names
    for column in dict.fromkeys(("image", *required)):
        if column not in names:
            raise DatasetError(f"{shard}: no '{column}' column; columns are {names} ({_NEEDED_FOR.get(column, 'expected id, image, label')})")
    return handle


class ShardRows(NamedTuple):
    """What :func:`parquet_rows` read of one shard."""

    frame: pd.DataFrame  # label columns present, ``path``, (``file_size``), ``id``
    positions: np.ndarray  # (row group, offset in the group) per row
    columns: list[str]  # the shard's own columns


def parquet_rows(shard: Path, *, required: Iterable[str] = (), measure: bool = False) -> ShardRows:
    """One shard's label columns, each image's original ``path``, and where each row lives.

    The image bytes are not read, unless ``measure`` asks for each image's size (``file_size``):
    then they are read a row group at a time and dropped at once, so at most one row group's bytes
    are in memory. A row without an ``id`` gets its image's path, else ``<shard>-<row>``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    handle = open_parquet_shard(shard, required=required)
    wanted = [c for c in LABEL_COLUMNS if c in handle.schema_arrow.names]
    bytes_column, path_column = image_columns(handle.schema_arrow)
    reading = wanted + [c for c in (bytes_column if measure else None, path_column) if c]
    pieces = []
    for group in range(handle.num_row_groups):
        try:
            table = handle.read_row_group(group, columns=reading)
        except Exception as error:  # a damaged row group: say so now, not halfway through training
            raise DatasetError(f"{shard}: row group {group} is not a readable Parquet row group ({error})") from error
        paths = image_field(table, path_column)
        columns = {c: table.column(c) for c in wanted}
        columns["path"] = paths if paths is not None else pa.nulls(table.num_rows, pa.string())
        if measure:
            images = image_field(table, bytes_column)
            sizes = pc.fill_null(pc.binary_length(images), 0) if images is not None else pa.repeat(0, table.num_rows)
            columns["file_size"] = sizes.cast(pa.int64())
        pieces.append(pa.table(columns))
        del table  # the bytes go before the next row group is read
    empty = pd.DataFrame(columns=[*wanted, "path", *(["file_size"] if measure else [])])
    frame = pa.concat_tables(pieces).to_pandas() if pieces else empty
    if "id" not in frame:
        frame["id"] = [p or f"{shard.stem}-{i}" for i, p in enumerate(frame["path"])]
    return ShardRows(frame, np.column_stack(row_positions(handle)).astype(np.int64), handle.schema_arrow.names)


# ----------------------------------------------------------------------------- file rows
def file_rows(root: Path) -> pd.DataFrame:
    """The rows of a CSV manifest (a file, or ``manifest.csv`` / ``train.csv`` in a folder) or of a
    ``real/``/``ai/`` folder: paths and labels, nothing opened but the manifest."""
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return _csv_rows(root)
        raise DatasetError(f"{root}: expected a .csv manifest or a .parquet file, got '{root.suffix.lower() or 'no extension'}'")
    for manifest in ("manifest.csv", "train.csv"):
        if (root / manifest).is_file():
            return _csv_rows(root / manifest)
    class_dirs = _class_folders(root)
    if class_dirs:
        return _class_folder_rows(class_dirs)
    raise DatasetError(
        f"{root}: no dataset found. Expected one of: Parquet shards (Hugging Face aiornot), "
        f"manifest.csv / train.csv, or subfolders {REAL_DIRS[0]}/ and {AI_DIRS[0]}/ "
        f"(also {REAL_DIRS[1]}/ and {AI_DIRS[1]}/)"
    )


#: Text encodings a manifest is read in, in turn: UTF-8 (with or without the BOM Excel writes for "CSV UTF-8"),
#: then CP949, what Excel's plain "CSV" writes on Korean Windows (Korean file names in it are common).
MANIFEST_ENCODINGS = ("utf-8-sig", "cp949")
#: Separators tried when the file is not comma-separated (Excel writes ';' where ',' is the decimal mark).
OTHER_SEPARATORS = (";", "\t")


def read_manifest(manifest: Path) -> pd.DataFrame:
    """A CSV manifest as a table, whatever Excel saved it as: UTF-8 or CP949, and comma, semicolon or tab separated."""
    failures = []
    for encoding in MANIFEST_ENCODINGS:
        try:
            table = pd.read_csv(manifest, encoding=encoding)
            if len(table.columns) == 1:  # one column: perhaps another separator
                separator = next((sep for sep in OTHER_SEPARATORS if sep in str(table.columns[0])), None)
                table = pd.read_csv(manifest, encoding=encoding, sep=separator) if separator else table
            return table
        except UnicodeDecodeError as error:
            failures.append(f"{encoding}: {error.reason} at byte {error.start}")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise DatasetError(f"{manifest}: not a readable CSV ({error})") from error
    raise DatasetError(f"{manifest}: not readable as UTF-8 or CP949 text ({'; '.join(failures)}); "
                       "save it from Excel as 'CSV UTF-8'")


def _csv_rows(manifest: Path) -> pd.DataFrame:
    table = read_manifest(manifest)
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


def _class_folder_rows(class_dirs: dict[int, Path]) -> pd.DataFrame:
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


def _unlabelled_folder_rows(root: Path) -> pd.DataFrame:
    if not root.is_dir():
        raise DatasetError(f"{root}: expected Parquet shards, a CSV manifest or a folder of images")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return pd.DataFrame({"id": [os.path.relpath(f, root) for f in files], "label": UNLABELLED, "path": files})


# ------------------------------------------------------------------------------- labels
def file_ids(frame: pd.DataFrame) -> list:
    """Each row's ``id``: the one given, or when no row has one, its file's name (its position without a path)."""
    if "id" in frame and not frame["id"].isna().all():
        return frame["id"].tolist()
    return [Path(str(p)).name if p else str(i) for i, p in enumerate(frame["path"])]


def checked_labels(frame: pd.DataFrame, where: Path, *, allow_unlabelled: bool = False) -> pd.Series:
    """``frame``'s labels as ints 0 (camera) / 1 (AI), or :data:`UNLABELLED` for missing ones when allowed.

    Raises :class:`DatasetError` for a dataset without rows and for any other label value.
    """
    if frame.empty:
        raise DatasetError(f"{where}: the dataset has no rows")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    allowed = [0, 1]
    if allow_unlabelled:
        labels, allowed = labels.fillna(UNLABELLED), [0, 1, UNLABELLED]
    bad = frame.loc[labels.isna() | ~labels.isin(allowed), "label"]
    if not bad.empty:
        examples = ", ".join(repr(v) for v in bad.unique()[:5])
        raise DatasetError(f"{where}: labels must be 0 (camera photo) or 1 (AI-generated); found {examples} in {len(bad)} rows")
    return labels.astype(int)


# ------------------------------------------------------------------------ the label table
class ImageTable:
    """A dataset's label table, plus where each row's image lives; the pixels stay on disk.

    ``labels`` has :data:`LABEL_COLUMNS` (and ``path`` for files on disk). ``units`` gives each
    row's storage unit: a Parquet row group, or the row itself for image files. Rows of the same
    unit are cheap to read together, which :mod:`aiornot.training.feed` uses to shuffle in windows.
    ``shared_columns`` are the columns every shard has (none for image files).
    """

    def __init__(self, labels: pd.DataFrame, *, shards: Sequence[Path] = (), locations: np.ndarray | None = None,
                 root: Path | None = None, cache_units: int = DEFAULT_CACHE_UNITS,
                 shared_columns: Iterable[str] = ()) -> None:
        self.labels = labels.reset_index(drop=True)
        self.root = root
        self.shared_columns = frozenset(shared_columns)
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


def open_table(path: str | Path, *, cache_units: int = DEFAULT_CACHE_UNITS, required: Iterable[str] = ()) -> ImageTable:
    """The label table of a dataset, read without touching a pixel.

    Accepts every layout of this module's docstring; a Parquet shard must also have the
    ``required`` columns. Raises :class:`DatasetError` with what was wrong.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root} does not exist; pass Parquet shards, a CSV manifest or an image folder")
    shards = parquet_shards(root)
    if shards:
        return _parquet_table(shards, cache_units, required)
    return _file_table(root)


def _parquet_table(shards: Sequence[Path], cache_units: int, required: Iterable[str]) -> ImageTable:
    parts, locations, shared = [], [], set()
    for index, shard in enumerate(shards):
        frame, positions, columns = parquet_rows(shard, required=required)
        parts.append(frame[[c for c in frame.columns if c in LABEL_COLUMNS]])
        locations.append(np.column_stack([np.full(len(positions), index, dtype=np.int64), positions]))
        shared = set(columns) if index == 0 else shared & set(columns)
    where = shards[0].parent
    return ImageTable(_label_table(pd.concat(parts, ignore_index=True), where), shards=shards,
                      locations=np.concatenate(locations), root=where, cache_units=cache_units, shared_columns=shared)


def _file_table(root: Path) -> ImageTable:
    try:
        frame = file_rows(root)  # CSV manifests and class folders: file names only, nothing decoded
        frame["label"] = checked_labels(frame, root)
    except DatasetError:  # not a labelled layout: a folder of unlabelled images, or a clear error
        frame = _unlabelled_folder_rows(root)
    frame["id"] = file_ids(frame)
    if frame["id"].duplicated().any():  # e.g. real/1.jpg and ai/1.jpg: the path is the identity
        frame["id"] = frame["path"].astype(str)
    columns = [c for c in (*LABEL_COLUMNS, "path") if c in frame.columns]
    return ImageTable(_label_table(frame[columns], root), root=root if root.is_dir() else root.parent)


def _label_table(frame: pd.DataFrame, where: Path) -> pd.DataFrame:
    frame = frame.copy()
    for column in LABEL_COLUMNS:
        if column not in frame:
            frame[column] = UNLABELLED if column == "label" else None
    frame["label"] = checked_labels(frame, where, allow_unlabelled=True)
    frame["id"] = frame["id"].astype(str)
    return frame
