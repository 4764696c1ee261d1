"""The heatmap overlay sent back to the page: a display-size PNG made in memory, never saved."""

from __future__ import annotations

import base64
import io

import numpy as np

#: Longest side of the heatmap overlay sent back (display only; the model saw full resolution).
OVERLAY_MAX_SIDE = 512


def overlay_data_url(pixels: np.ndarray, heatmap: np.ndarray) -> str:
    """The heatmap over a display-size copy of the decoded photo, as a PNG data URL (never saved)."""
    from PIL import Image

    from aiornot import plots, transforms

    height, width = pixels.shape[:2]
    scale = min(1.0, OVERLAY_MAX_SIDE / max(height, width))
    if scale < 1.0:
        pixels = transforms.resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))))
    buffer = io.BytesIO()
    # Fast compression: zlib's default level spends 0.3 s on a noisy photo for a one-off display image.
    Image.fromarray(plots.overlay(pixels, heatmap)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
