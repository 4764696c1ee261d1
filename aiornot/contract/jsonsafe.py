"""Values made fit for JSON: one converter, two policies.

``detector.json`` is a store of measured numbers, so it keeps NaN (Python's ``json`` writes it)
and refuses what it does not know — a typo must not be saved as its ``str()``. Provenance
details come from untrusted metadata (prompts pages long, EXIF rationals, byte strings), so they
turn NaN and infinity into ``None``, cut text, lists and nesting short, and stringify the rest.
"""

from __future__ import annotations

import itertools
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any, *, finite: bool = False, max_text: int | None = None, max_items: int | None = None,
              max_depth: int | None = None, strict: bool = True, _depth: int = 0) -> Any:
    """``value`` as plain JSON types: dict (string keys), list, str, int, float, bool, None.

    numpy scalars and arrays, tuples and sets, paths, bytes (UTF-8, undecodable bytes replaced)
    and other real numbers (e.g. EXIF ``IFDRational``) are converted. ``finite``: NaN and
    infinity become ``None``. ``max_text`` cuts strings and bytes, ``max_items`` lists, and
    below ``max_depth`` levels a value is kept as its (cut) ``str()``. Anything else raises
    ``TypeError`` when ``strict``, or becomes its cut ``str()`` otherwise.
    """
    def cut(text: str) -> str:
        return text if max_text is None else text[:max_text]

    def inner(item: Any) -> Any:
        return json_safe(item, finite=finite, max_text=max_text, max_items=max_items, max_depth=max_depth,
                         strict=strict, _depth=_depth + 1)

    if max_depth is not None and _depth > max_depth:
        return cut(str(value))
    if value is None or isinstance(value, (bool, str)):
        return cut(value) if isinstance(value, str) else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # float, numpy floats, EXIF IFDRational
        number = float(value)
        return None if finite and not math.isfinite(number) else number
    if isinstance(value, (bytes, bytearray)):
        return bytes(value if max_text is None else value[:max_text]).decode("utf-8", "replace")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): inner(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [inner(item) for item in itertools.islice(value, max_items)]
    if strict:
        raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
    return cut(str(value))
