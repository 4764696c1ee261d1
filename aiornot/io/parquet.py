"""Image bytes out of Hugging Face Parquet shards, one row group at a time, in bounded memory.

Both :func:`aiornot.io.datasets.image_source` (rows of a loaded DataFrame) and
:class:`aiornot.io.reader.ImageTable` (the streaming label table) keep only *where* each image lives —
shard, row group, offset in the group — and read the bytes on demand through a
:class:`RowGroupReader`: a small LRU cache of row groups' image bytes (encoded files, not pixels)
and a few open ``ParquetFile`` handles, re-opened in a forked worker.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from cachetools import LRUCache

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

#: Separator of the parts of a location string (``<shard>::<row group>::<offset>``).
LOCATION_SEPARATOR = "::"

# Every live reader, so a forked child can give each a fresh lock (see _after_fork).
_READERS: "weakref.WeakSet[RowGroupReader]" = weakref.WeakSet()


def image_columns(schema: "pa.Schema") -> tuple[str | None, str | None]:
    """The columns to read for an ``image`` column's file bytes and original path.

    The Hugging Face layout is a struct ``image{bytes, path}``; reading ``image.bytes`` alone
    leaves the other field on disk. A plain binary ``image`` column is its own bytes. Either
    name is ``None`` when the column has no such part (or there is no ``image`` column).
    """
    import pyarrow as pa

    if "image" not in schema.names:
        return None, None
    image = schema.field("image").type
    if pa.types.is_struct(image):
        fields = {image.field(i).name for i in range(image.num_fields)}
        return ("image.bytes" if "bytes" in fields else None), ("image.path" if "path" in fields else None)
    return ("image" if pa.types.is_binary(image) or pa.types.is_large_binary(image) else None), None


def image_field(table: "pa.Table", name: str | None) -> "pa.Array | None":
    """One part of the ``image`` column of ``table`` as read with a name from :func:`image_columns`."""
    import pyarrow.compute as pc

    if name is None:
        return None
    column = table.column("image").combine_chunks()
    # struct_field (unlike StructArray.field) keeps a null struct null rather than exposing its child.
    return pc.struct_field(column, name.split(".", 1)[1]) if "." in name else column


def row_positions(handle: "pq.ParquetFile") -> tuple["np.ndarray", "np.ndarray"]:
    """Row group and offset within it of every row of a shard, from its footer alone (nothing read)."""
    import numpy as np

    sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
    groups = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    offsets = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes]) if sizes else np.zeros(0, np.int64)
    return groups, offsets


def format_location(shard: str | Path, group: int, offset: int) -> str:
    """``<shard>::<group>::<offset>``: a plain string, so it survives pickling and CSV files."""
    return f"{os.fspath(shard)}{LOCATION_SEPARATOR}{group}{LOCATION_SEPARATOR}{offset}"


def parse_location(location: str) -> tuple[str, int, int]:
    """The shard path, row group and offset of a :func:`format_location` string."""
    # From the right: a shard path may itself contain the separator, the two numbers cannot.
    shard, group, offset = location.rsplit(LOCATION_SEPARATOR, 2)
    return shard, int(group), int(offset)


class RowGroupReader:
    """Reads image bytes of Parquet shards by (shard, row group, offset), thread-safely.

    Up to ``cache_units`` row groups (and, when given, about ``cache_bytes`` of them) stay in
    memory, least recently used dropped first, so reading a dataset in storage order reads each
    row group once. At most ``open_files`` shards are open at once: an open reader keeps its
    last row group's buffers, so one handle per shard of a large dataset would hold them all.
    Pickling drops the cache and the handles; a forked child re-opens its own handles.
    """

    def __init__(self, *, cache_units: int = 4, cache_bytes: int | None = None, open_files: int = 2) -> None:
        self.cache_units = max(1, cache_units)
        self.cache_bytes = cache_bytes
        self.open_files = max(1, open_files)
        self._reset()
        _READERS.add(self)

    def _reset(self) -> None:
        # cachetools caches are not thread-safe: every use below holds self._lock.
        self._cache: LRUCache[tuple[str, int], "pa.Array"] = _row_group_cache(self.cache_bytes)
        self._files: LRUCache[str, tuple["pq.ParquetFile", threading.Lock]] = LRUCache(maxsize=self.open_files)
        self._pid = os.getpid()
        self._lock = threading.Lock()  # DataLoader/PyDataset workers may be threads sharing a reader

    def __getstate__(self) -> dict:
        return {"cache_units": self.cache_units, "cache_bytes": self.cache_bytes, "open_files": self.open_files}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()
        _READERS.add(self)

    def clear(self) -> None:
        """Drop the cached row groups and close the open shards."""
        with self._lock:
            self._cache.clear()
            self._files.clear()

    def image(self, shard: str | Path, group: int, offset: int) -> bytes:
        """The file bytes of one image (``b""`` when the row has none)."""
        return self.row_group(shard, group)[offset].as_py() or b""

    def row_group(self, shard: str | Path, group: int) -> "pa.Array":
        """The image bytes of one row group, as a binary array (null where a row has none)."""
        key = (os.fspath(shard), int(group))
        with self._lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            handle, reading = self._file(key[0])
        # One ParquetFile must not be read by two threads at once (it crashes, or mixes up reads),
        # so reads of a shard take turns; other shards' reads, and decoding, go on meanwhile.
        with reading:
            with self._lock:
                cached = self._cached(key)  # another thread may have just read this row group
            if cached is not None:
                return cached
            images = _read_images(handle, key[1])
            with self._lock:
                if key not in self._cache:  # (a re-opened handle of this shard may have read it too)
                    self._cache[key] = images  # drops the least recently used groups beyond the byte budget
                while len(self._cache) > self.cache_units:
                    self._cache.popitem()  # the least recently used
        return images

    def _cached(self, key: tuple[str, int]) -> "pa.Array | None":
        """The cached row group ``key``, now the most recently used (the lock is held)."""
        return self._cache.get(key)

    def _file(self, shard: str) -> tuple["pq.ParquetFile", threading.Lock]:
        """The open handle of ``shard`` and the lock its reads take (``self._lock`` is held)."""
        import pyarrow.parquet as pq

        if self._pid != os.getpid():  # a forked worker must not share the parent's file handles
            self._files.clear()
            self._pid = os.getpid()
        if shard in self._files:
            return self._files[shard]  # (reading it makes it the most recently used)
        # A handle dropped here may still be read by a thread holding it; a new one is independent.
        opened = (pq.ParquetFile(shard), threading.Lock())
        self._files[shard] = opened  # drops the least recently used handle beyond open_files
        return opened


def _row_group_cache(cache_bytes: int | None) -> LRUCache:
    """An LRU cache of row groups' image arrays, bounded by their bytes when ``cache_bytes`` is given.

    The count bound (``cache_units``) is applied by the reader after each insertion. A row group
    larger than the whole budget is still kept, alone: it counts as the whole budget, so reading
    its images one at a time reads it once (cachetools would refuse a value larger than the cache).
    """
    if cache_bytes is None:
        return LRUCache(maxsize=math.inf)
    budget = max(1, cache_bytes)
    return LRUCache(maxsize=budget, getsizeof=lambda images: min(images.nbytes, budget))


def _read_images(handle: "pq.ParquetFile", group: int) -> "pa.Array":
    import pyarrow as pa

    bytes_column, _ = image_columns(handle.schema_arrow)
    if bytes_column is None:  # e.g. an image struct with only a path: no row has bytes here
        return pa.nulls(handle.metadata.row_group(group).num_rows, pa.binary())
    return image_field(handle.read_row_group(group, columns=[bytes_column]), bytes_column)


def _after_fork() -> None:
    # A lock held by another thread at fork time stays locked forever in the child: replace it.
    for reader in list(_READERS):
        reader._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
