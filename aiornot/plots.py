"""Figures that show images: grids per class, galleries with scores (thumbnails and overlays: :mod:`aiornot.display`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from aiornot.display import overlay, thumbnail  # noqa: F401 (overlay: the notebooks call plots.overlay)
from aiornot.imageio import ImageDecodeError, open_image

if TYPE_CHECKING:  # pandas and matplotlib load only where a figure is drawn
    import pandas as pd


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
