"""What every experiment here reads: the sample with the split `make reports` saved, as lazy views."""

from __future__ import annotations

import pandas as pd

from aiornot.contract.paths import ROOT
from aiornot.io import datasets, lazy, transforms


def report_views() -> tuple[pd.DataFrame, lazy.LazyImages, lazy.LazyImages]:
    """The labelled sample (notebook 02's saved split), its images, and their re-encoded copies (384 px, JPEG q90)."""
    # Checked against notebook 02's split when `make reports` has written it; the split is the seed's either way.
    saved = ROOT / "build/full/splits.csv"
    labelled, _ = datasets.prepare_split(ROOT / "data/sample", None, seed=42, saved_splits=saved if saved.is_file() else None,
                                         progress=False)
    frame = labelled.reset_index(drop=True)
    pixels = lazy.images(frame)
    return frame, pixels, pixels.map(transforms.reencode_like_upload)
