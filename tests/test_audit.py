"""The shortcut audit (aiornot.evaluation.audit): a classifier on container metadata alone finds a leak, and no leak in a clean set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiornot.evaluation import audit


def _container_frame(leaky: bool, n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * (n // 2))
    fmt = np.where(labels == 1, "WEBP", "JPEG") if leaky else rng.choice(["JPEG", "WEBP"], n)
    return pd.DataFrame({
        "label": labels, "source": [f"s{i}" for i in range(n)], "format": fmt,
        "width": rng.integers(300, 900, n), "height": rng.integers(300, 900, n),
        "file_size": rng.integers(20_000, 200_000, n), "jpeg_quality": np.where(fmt == "JPEG", 90, np.nan),
        "has_exif": rng.random(n) < 0.3,
    })


def test_shortcut_audit_finds_a_leaking_container_and_not_a_clean_one():
    leaky = audit.shortcut_audit(_container_frame(True))
    clean = audit.shortcut_audit(_container_frame(False))
    assert leaky.roc_auc > 0.95 and "laundered" in leaky.verdict and leaky.grouped
    assert clean.roc_auc < 0.7
