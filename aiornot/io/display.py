"""Pictures made for people, never for scoring: square thumbnails and the heatmap overlay.

The notebooks' figures (:mod:`aiornot.reporting.plots`) and the web page's overlay (:mod:`aiornot.apps.service.render`)
both draw with these, so the page shows the heatmap in the same colours as the reports. numpy and the
resize of :mod:`aiornot.io.transforms` only; matplotlib's colour map loads when an overlay is drawn.
"""

from __future__ import annotations

import numpy as np

from aiornot.io import transforms


def thumbnail(pixels: np.ndarray, side: int = 160) -> np.ndarray:
    """A square-padded thumbnail for display only (never for scoring)."""
    small = transforms.fit_within(pixels, side, enlarge=True)
    canvas = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def overlay(pixels: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap (values 0–1) stretched over the image in a red-yellow colour map."""
    from matplotlib import colormaps

    height, width = pixels.shape[:2]
    values = np.clip(np.nan_to_num(heatmap), 0, 1)
    stretched = transforms.resize((values * 255).astype(np.uint8)[:, :, None].repeat(3, axis=2), (width, height))[:, :, 0] / 255.0
    colours = (colormaps["inferno"](stretched)[:, :, :3] * 255).astype(np.float32)
    return np.clip((1 - alpha) * pixels.astype(np.float32) + alpha * colours, 0, 255).astype(np.uint8)
