"""Pixel transforms shared by training (augmentation), evaluation (robustness, laundering) and the
ID-photo case study (the life of a real ID photo). All take and return RGB ``uint8`` arrays."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from aiornot.contract.config import DETECTOR_CROP_SIZE, DETECTOR_CROPS_PER_IMAGE, DETECTOR_MAX_TILES  # noqa: F401 - the tile policy's defaults live in the config

Transform = Callable[[np.ndarray], np.ndarray]

#: Laundering: every held-out image decoded, centre-cropped square, resized, saved as PNG
#: without metadata. A model that drops a lot on the laundered copy was reading the container.
LAUNDER_SIZE = 256
#: 35×45 mm at 300 dpi, the usual Korean passport/ID photo print size in pixels.
ID_PHOTO_SIZE = (413, 531)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode as JPEG at ``quality`` (4:2:0 chroma, as cameras and web uploads do)."""
    return np.asarray(Image.open(io.BytesIO(jpeg_bytes(pixels, quality))).convert("RGB"))


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    """The JPEG file of ``pixels`` at ``quality``, without metadata: a photo as an office receives it after a re-save."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels."""
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=float(sigma))))


def rescale(pixels: np.ndarray, factor: float, resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize by ``factor`` (0.5 = half the width and height), at least 16 px per side."""
    height, width = pixels.shape[:2]
    size = (max(16, round(width * factor)), max(16, round(height * factor)))
    return resize(pixels, size, resample)


def resize(pixels: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize to ``size`` = (width, height)."""
    return np.asarray(Image.fromarray(pixels).resize(size, resample))


def fit_within(pixels: np.ndarray, max_side: int, resample: Image.Resampling = Image.Resampling.BICUBIC, *,
               enlarge: bool = False) -> np.ndarray:
    """``pixels`` resized so the longest side is ``max_side``, the aspect ratio kept (Pillow's
    ``ImageOps.contain``). An image that already fits is returned as it is unless ``enlarge``."""
    if max(pixels.shape[:2]) <= max_side and not enlarge:
        return pixels
    return np.asarray(ImageOps.contain(Image.fromarray(pixels), (max_side, max_side), resample))


def resized_images(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Whole images resized to ``size``² and scaled to [0, 1] — the seed's input pipeline."""
    return np.stack([resize(p, (size, size)) for p in images]).astype(np.float32) / 255.0


def centre_square(pixels: np.ndarray) -> np.ndarray:
    """The largest centred square."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return pixels[top : top + side, left : left + side]


def launder(pixels: np.ndarray, size: int = LAUNDER_SIZE) -> bytes:
    """The laundered copy: centre square → ``size``² (Lanczos) → PNG bytes with no metadata."""
    square = resize(centre_square(pixels), (size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    Image.fromarray(square).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def laundered(pixels: np.ndarray, size: int = LAUNDER_SIZE) -> np.ndarray:
    """The pixels of :func:`launder`'s PNG, read back through the one safe decoder."""
    from aiornot.io.decode import open_image

    return open_image(launder(pixels, size)).pixels


def print_and_scan(pixels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A print-and-scan-like degradation: slight blur, sensor noise, then JPEG quality 85."""
    rng = np.random.default_rng(seed)
    softened = blur(pixels, 0.8).astype(np.float32)
    noisy = np.clip(softened + rng.normal(0.0, 3.0, softened.shape), 0, 255).astype(np.uint8)
    return jpeg(noisy, 85)


def crop_grid(pixels: np.ndarray, size: int, count: int) -> np.ndarray:
    """``count`` crops of ``size``² at native resolution, centred on an even grid over the image.

    With 4 crops they sit around the points at 25 % and 75 % of the width and height; with 1,
    in the centre. Images smaller than the crop are padded by reflection (never resized, which
    would erase the traces the detector reads). Returns an array ``(count, size, size, 3)``.
    """
    pixels = pad_to(pixels, size)
    height, width = pixels.shape[:2]
    side = int(np.ceil(np.sqrt(count)))
    centres = (np.arange(side) + 0.5) / side
    tops = np.clip(np.round(centres * height - size / 2), 0, height - size).astype(int)
    lefts = np.clip(np.round(centres * width - size / 2), 0, width - size).astype(int)
    positions = [(int(t), int(l)) for t in tops for l in lefts]
    # When the grid has more cells than crops, keep the most central ones.
    middle = np.array([(height - size) / 2, (width - size) / 2])
    positions = sorted(sorted(positions, key=lambda p: float(np.sum((np.array(p) - middle) ** 2)))[:count])
    return np.stack([pixels[t : t + size, l : l + size] for t, l in positions])


def tile_grid(pixels: np.ndarray, size: int, max_tiles: int) -> np.ndarray:
    """Non-overlapping ``size``² tiles at native resolution over the whole image, at most ``max_tiles``.

    The grid is centred; when the image holds more tiles than ``max_tiles``, rows and columns are
    thinned evenly (so the tiles still span the picture rather than bunching in one corner).
    Images smaller than a tile are reflect-padded. Returns ``(tiles, size, size, 3)``.
    """
    pixels = pad_to(pixels, size)
    height, width = pixels.shape[:2]
    rows, cols = height // size, width // size
    if rows * cols > max_tiles:
        factor = float(np.sqrt(rows * cols / max_tiles))
        keep_rows = max(1, min(rows, int(rows / factor)))
        keep_cols = max(1, min(cols, max_tiles // keep_rows))
    else:
        keep_rows, keep_cols = rows, cols
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    tops = top0 + size * np.linspace(0, rows - 1, keep_rows).round().astype(int)
    lefts = left0 + size * np.linspace(0, cols - 1, keep_cols).round().astype(int)
    return np.stack([pixels[t : t + size, l : l + size] for t in tops for l in lefts])


def reencode_like_upload(pixels: np.ndarray, size: int = 384, quality: int = 90) -> np.ndarray:
    """The re-encoded copy an outside check sees: centre square → ``size``² (Lanczos) → JPEG ``quality``, no metadata."""
    return jpeg(resize(centre_square(pixels), (size, size), Image.Resampling.LANCZOS), quality)


#: The short side of the semantic head's low-resolution training view (issue 17, tools/experiments/lowres_view.py).
LOW_RES_SIDE = 128


def low_resolution_like_upload(pixels: np.ndarray, side: int = LOW_RES_SIDE) -> np.ndarray:
    """The picture brought down to a short side of ``side`` px (never enlarged), then re-encoded as an upload is.

    A training view only: in the sample nearly every small, soft picture is a real one (avatars, headshots), so
    without it "small and soft" can stand in for "real"; with it both classes show that look.
    """
    height, width = pixels.shape[:2]
    scale = side / min(height, width)
    if scale < 1:
        pixels = resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))))
    return reencode_like_upload(pixels)


def random_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """One random ``size``² crop at native resolution (reflect-padded if the image is smaller)."""
    pixels = pad_to(pixels, size)
    height, width = pixels.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return pixels[top : top + size, left : left + size]


def pad_to(pixels: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad so both sides are at least ``size``."""
    height, width = pixels.shape[:2]
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if not pad_h and not pad_w:
        return pixels
    mode = "reflect" if min(height, width) > 1 else "edge"
    return np.pad(pixels, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)), mode=mode)


def augment(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training augmentation: random rescale, blur and JPEG, as CNNDetection found needed to
    survive real-world copies; each applied with its own probability."""
    if rng.random() < 0.3:
        pixels = rescale(pixels, float(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.25:
        pixels = blur(pixels, float(rng.uniform(0.2, 1.5)))
    if rng.random() < 0.5:
        pixels = jpeg(pixels, int(rng.integers(60, 101)))
    return pixels


#: The robustness conditions reported in notebook 03: name → transform.
ROBUSTNESS: dict[str, Transform] = {
    "original": lambda p: p,
    "jpeg95": lambda p: jpeg(p, 95),
    "jpeg75": lambda p: jpeg(p, 75),
    "jpeg50": lambda p: jpeg(p, 50),
    "downscale0.5": lambda p: rescale(p, 0.5),
    "blur1.0": lambda p: blur(p, 1.0),
}

#: What happens to a real ID photo on its way to an office (notebook 04).
ID_PHOTO_LIFE: dict[str, Transform] = {
    "as submitted": lambda p: p,
    "JPEG q70": lambda p: jpeg(p, 70),
    "resized to 413×531": lambda p: resize(p, ID_PHOTO_SIZE),
    "print-and-scan": print_and_scan,
}
