"""Images decoded when they are used, never all at once: how the notebooks hold a dataset.

A :class:`LazyImages` is a read-only ``Sequence`` of RGB ``uint8`` arrays over the rows of a
dataset frame. Indexing decodes one image through the one safe decoder; slicing, :meth:`take`,
:meth:`map` and :func:`chain` give new views without decoding anything. Every function that takes
"a list of images" (training, calibration, scoring, the leave-out protocol, the robustness sweep)
reads one image or one batch at a time, so with these views memory is bounded by the batch and by
one shared cache, not by the size of the dataset.

The cache (:data:`PIXEL_CACHE`) keeps recently used decoded images up to a byte budget
(``AIORNOT_PIXEL_CACHE_MB``, default :data:`DEFAULT_CACHE_MB`), because training reads the same
image many times; on the 1,118-image sample it spares most re-decoding, on the seed's 62k images
it is the same size. Cached arrays are read-only, so no caller can change what another one sees.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Callable, Iterator, Sequence, overload

import numpy as np
import pandas as pd
from cachetools import LRUCache

#: The shared decode cache's default budget in MiB (``AIORNOT_PIXEL_CACHE_MB`` overrides it).
DEFAULT_CACHE_MB = 768
# Larger images are cut to a centred window this size when decoded: crops come from native
# resolution either way, and a 24-megapixel photo need not sit whole in memory.
MAX_SIDE = 1536


class PixelCache:
    """A thread-safe least-recently-used store of decoded images, bounded in bytes."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = max(0, int(budget_bytes))
        self._items: LRUCache[tuple[int, int], np.ndarray] = LRUCache(maxsize=self.budget_bytes, getsizeof=_nbytes)
        self._lock = threading.Lock()  # a cachetools cache is not thread-safe by itself

    @property
    def bytes_held(self) -> int:
        return self._items.currsize

    def get(self, key: tuple[int, int]) -> np.ndarray | None:
        """The image stored under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[int, int], value: np.ndarray) -> None:
        """Keep ``value``, dropping the least recently used images beyond the budget.

        An image larger than the whole budget is not kept; an image already stored is kept as it was.
        """
        if value.nbytes > self.budget_bytes:
            return
        with self._lock:
            if key not in self._items:
                self._items[key] = value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _nbytes(value: np.ndarray) -> int:
    return value.nbytes


def _budget_from_environment() -> int:
    raw = os.environ.get("AIORNOT_PIXEL_CACHE_MB", str(DEFAULT_CACHE_MB))
    try:
        return int(float(raw) * 2**20)
    except ValueError:
        raise ValueError(f"AIORNOT_PIXEL_CACHE_MB must be a number of MiB, not {raw!r}") from None


#: The one cache every lazy view shares, so the budget holds for all of them together.
PIXEL_CACHE = PixelCache(_budget_from_environment())
_tokens = itertools.count()


class LazyImages(Sequence[np.ndarray]):
    """A sequence of images produced on demand by ``load(i)``; see the module's docstring.

    Build one with :func:`images` (rows of a frame), :meth:`map` (a transform of each image),
    :meth:`take` / slicing (a subset) or :func:`chain` (one sequence after another).
    """

    def __init__(self, length: int, load: Callable[[int], np.ndarray], *, cached: bool = True) -> None:
        self._length, self._load, self._cached = int(length), load, cached
        self._token = next(_tokens)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> "LazyImages": ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.take(range(*index.indices(self._length)))
        if isinstance(index, (list, tuple, range, np.ndarray)):
            return self.take(index)
        position = int(index)
        if position < 0:
            position += self._length
        if not 0 <= position < self._length:
            raise IndexError(f"image {index} of {self._length}")
        return self._get(position)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self._get(i) for i in range(self._length))

    def _get(self, position: int) -> np.ndarray:
        if not self._cached:
            return self._load(position)
        key = (self._token, position)
        value = PIXEL_CACHE.get(key)
        if value is None:
            value = np.asarray(self._load(position))
            value.flags.writeable = False
            PIXEL_CACHE.put(key, value)
        return value

    def take(self, rows: Sequence[int] | np.ndarray) -> "LazyImages":
        """The images at ``rows`` (positions, or a boolean mask), in that order; nothing is decoded."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if len(rows) != self._length:
                raise ValueError(f"a mask of {len(rows)} values for {self._length} images")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        if len(rows) and (rows.min() < -self._length or rows.max() >= self._length):
            raise IndexError(f"rows outside 0..{self._length - 1}")
        return LazyImages(len(rows), lambda i: self[int(rows[i])], cached=False)  # the parent caches

    def map(self, transform: Callable[[np.ndarray], np.ndarray]) -> "LazyImages":
        """Each image passed through ``transform`` when it is read (results cached like decodes)."""
        return LazyImages(self._length, lambda i: transform(self[i]))


def images(frame: pd.DataFrame, *, max_side: int | None = MAX_SIDE) -> LazyImages:
    """The images of ``frame``'s rows (read with :func:`aiornot.io.datasets.image_source`), decoded when read.

    Rows must be readable: run :func:`aiornot.io.datasets.check_images` (or ``data.prepare_split``) first,
    which reports the unreadable ones instead of dropping them silently.
    """
    from aiornot.io.datasets import image_source
    from aiornot.io.decode import open_image

    rows = frame.reset_index(drop=True)

    def load(position: int) -> np.ndarray:
        pixels = open_image(image_source(rows.iloc[position])).pixels
        return centre_window(pixels, max_side) if max_side else pixels

    return LazyImages(len(rows), load)


def centre_window(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """The centred window of at most ``max_side``² pixels (the whole image when it is smaller)."""
    height, width = pixels.shape[:2]
    top, left = max(0, (height - max_side) // 2), max(0, (width - max_side) // 2)
    return pixels[top : top + max_side, left : left + max_side]


def chain(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> LazyImages:
    """``first`` then ``second`` as one sequence, without copying or decoding either."""
    boundary = len(first)
    return LazyImages(boundary + len(second), lambda i: first[i] if i < boundary else second[i - boundary], cached=False)


def take(images: Sequence[np.ndarray], rows: Sequence[int] | np.ndarray) -> Sequence[np.ndarray]:
    """``images`` at ``rows``: a lazy view of a :class:`LazyImages`, a list for a list."""
    if isinstance(images, LazyImages):
        return images.take(rows)
    rows = np.asarray(rows)
    rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    return [images[int(i)] for i in rows]


def mapped(images: Sequence[np.ndarray], transform: Callable[[np.ndarray], np.ndarray]) -> Sequence[np.ndarray]:
    """``transform`` of each image: lazy for a :class:`LazyImages`, computed now for a list."""
    if isinstance(images, LazyImages):
        return images.map(transform)
    return [transform(p) for p in images]
