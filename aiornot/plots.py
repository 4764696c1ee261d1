"""Figures that show images: grids per class, galleries with scores, heatmap overlays."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from aiornot import transforms
from aiornot.imageio import ImageDecodeError, open_image

if TYPE_CHECKING:  # the service imports this module for overlay(): pandas and matplotlib load only where used
    import pandas as pd


def thumbnail(pixels: np.ndarray, side: int = 160) -> np.ndarray:
    """A square-padded thumbnail for display only (never for scoring)."""
    small = transforms.fit_within(pixels, side, enlarge=True)
    canvas = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def image_grid(frame: "pd.DataFrame", *, per_row: int = 6, rows: int = 2, title: str = "", caption_column: str | None = "generator"):
    """A grid of thumbnails from ``frame`` (first rows), captioned by ``caption_column``."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from aiornot.data import image_source

    count = min(len(frame), per_row * rows)
    figure, axes = plt.subplots(rows, per_row, figsize=(per_row * 1.9, rows * 2.1))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, (_, row) in zip(np.ravel(axes), frame.head(count).iterrows()):
        try:
            axis.imshow(thumbnail(open_image(image_source(row)).pixels))
        except ImageDecodeError as error:
            axis.text(0.5, 0.5, f"unreadable:\n{error.code}", ha="center", va="center", fontsize=8)
        if caption_column and caption_column in row and pd.notna(row[caption_column]):
            axis.set_title(str(row[caption_column])[:22], fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def overlay(pixels: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap (values 0–1) stretched over the image in a red-yellow colour map."""
    from matplotlib import colormaps

    height, width = pixels.shape[:2]
    values = np.clip(np.nan_to_num(heatmap), 0, 1)
    stretched = transforms.resize((values * 255).astype(np.uint8)[:, :, None].repeat(3, axis=2), (width, height))[:, :, 0] / 255.0
    colours = (colormaps["inferno"](stretched)[:, :, :3] * 255).astype(np.float32)
    return np.clip((1 - alpha) * pixels.astype(np.float32) + alpha * colours, 0, 255).astype(np.uint8)


def save(figure, directory: str | Path, name: str) -> Path:
    """Save a figure as PNG under ``directory`` (created if needed); returns the path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def gallery_html(rows: Sequence[dict], thumbs: Sequence[np.ndarray]) -> str:
    """An HTML table with inline thumbnails (the seed's '실제 이미지 결과' table as a gallery)."""
    import base64
    import html
    import io

    from PIL import Image

    cells = []
    for row, thumb in zip(rows, thumbs):
        buffer = io.BytesIO()
        Image.fromarray(thumb).save(buffer, format="PNG")
        image = f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" width="96">'
        values = "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values())
        cells.append(f"<tr><td>{image}</td>{values}</tr>")
    header = "".join(f"<th>{html.escape(str(k))}</th>" for k in (rows[0].keys() if rows else []))
    return f'<table><thead><tr><th>image</th>{header}</tr></thead><tbody>{"".join(cells)}</tbody></table>'
