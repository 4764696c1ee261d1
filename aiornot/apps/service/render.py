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

    from aiornot.io import display, transforms

    pixels = transforms.fit_within(pixels, OVERLAY_MAX_SIDE)
    buffer = io.BytesIO()
    # Fast compression: zlib's default level spends 0.3 s on a noisy photo for a one-off display image.
    Image.fromarray(display.overlay(pixels, heatmap)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
