"""aiornot — tell AI-generated photos (above all ID photos, 증명사진) from camera photos.

The public surface is small on purpose:

* :func:`aiornot.io.decode.open_image` — the one safe decoder;
* :func:`aiornot.io.datasets.load` — datasets as a DataFrame (Hugging Face aiornot, folders, CSV);
* :class:`aiornot.Detector` — load a trained model and score images (imported lazily, so that
  importing the package does not start Keras).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from aiornot.detector import Detector, Result

__all__ = ["Detector", "Result", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import aiornot` must stay cheap for the CLI's --help and for the data tools.
    if name in ("Detector", "Result"):
        from aiornot import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'aiornot' has no attribute {name!r}")
