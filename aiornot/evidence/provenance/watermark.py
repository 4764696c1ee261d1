"""The ``sd_watermark`` signal: the Stable Diffusion invisible watermark (DWT-DCT, invisible-watermark).

SD v1/v2 scripts embed the text ``StableDiffusionV1``, SDXL 48 bits ``0xB3EC907BB19E``; a decoded
mark is ``strong_ai``. The mark lives in the chroma channel and does not survive resizing or a JPEG
save with the usual 4:2:0 subsampling (a 4:4:4 JPEG at q90 can keep it, so JPEGs are checked too):
its absence means nothing.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from aiornot.io.decode import DecodedImage, ImageDecodeError, open_image
from aiornot.evidence.provenance.signals import (ERROR, FOUND, NONE, NOT_FOUND, STRONG_AI, UNAVAILABLE, Signal,
                                                 make_signal)
from aiornot.evidence.wording import message, with_english_detail

#: What to install for the watermark check (the ``watermark`` extra; ``make env`` installs it).
WATERMARK_INSTALL = "pip install --no-deps invisible-watermark==0.2.0 PyWavelets==1.9.0"

#: SD v1/v2 reference scripts embed these 17 bytes (136 bits); SDXL embeds 48 bits.
SD_V1_MARK = b"StableDiffusionV1"
SDXL_MARK = 0xB3EC907BB19E
_MARKS: tuple[tuple[str, np.ndarray, int], ...] = (
    # (model, expected bits, bit errors tolerated). Chance of a random match: below 1e-20 for
    # 136 bits with 8 errors, about 1e-10 for 48 bits with 2 errors.
    ("Stable Diffusion v1/v2", np.unpackbits(np.frombuffer(SD_V1_MARK, dtype=np.uint8)), 8),
    ("Stable Diffusion XL", np.unpackbits(np.frombuffer(SDXL_MARK.to_bytes(6, "big"), dtype=np.uint8)), 2),
)
_WATERMARK_MIN_PIXELS = 256 * 256  # the encoder refuses smaller images, so none can carry it
# A slab of full-width rows from the top keeps the block-to-bit assignment of the whole image
# (bits are assigned row by row) at a bounded cost.
_WATERMARK_PIXEL_BUDGET = 1024 * 1024


@functools.lru_cache(maxsize=1)
def embed_max_dct() -> type:
    """The DWT-DCT watermark class of invisible-watermark, loaded without its package.

    ``imwatermark/__init__.py`` imports ``watermark.py``, which imports the RivaGAN module, which
    imports torch at module level. torch is gigabytes and not a dependency of aiornot; the DWT-DCT
    code in ``maxDct.py`` needs only numpy, OpenCV and PyWavelets. So we locate the package
    without executing it and load that one file by path, under a private module name.
    """
    spec = importlib.util.find_spec("imwatermark")  # top-level lookup: does not run __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"invisible-watermark is not installed ({WATERMARK_INSTALL})", name="imwatermark")
    path = f"{list(spec.submodule_search_locations)[0]}/maxDct.py"
    module_spec = importlib.util.spec_from_file_location("aiornot._imwatermark_maxdct", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.EmbedMaxDct


def check_watermark(data: bytes, decoded: DecodedImage | None = None) -> Signal:
    """The ``sd_watermark`` signal: decodes the pixels unless ``decoded`` already holds them."""
    try:
        decoder = embed_max_dct()
    except ModuleNotFoundError as error:  # an optional dependency: its absence is not a failed check
        words = with_english_detail(message("provenance.watermark.unavailable"),
                                    f": {error.name} is not installed ({WATERMARK_INSTALL})")
        return make_signal("sd_watermark", UNAVAILABLE, NONE, words, checked=False, missing=error.name)
    try:
        pixels = (decoded or open_image(data)).pixels
    except ImageDecodeError as error:
        words = with_english_detail(message("provenance.watermark.undecodable"), f": {error.message}")
        return make_signal("sd_watermark", ERROR, NONE, words, code=error.code)
    height, width = pixels.shape[:2]
    if height * width < _WATERMARK_MIN_PIXELS:
        return make_signal("sd_watermark", NOT_FOUND, NONE, message("provenance.watermark.too_small"), checked=False)
    rows = max(8, min(height, _WATERMARK_PIXEL_BUDGET // width) // 8 * 8)
    bgr = np.ascontiguousarray(pixels[:rows, :, ::-1])  # the encoder works on OpenCV's BGR order
    votes = block_votes(decoder(watermarks=[], wmLen=1), bgr)
    bit_errors: dict[str, int] = {}
    for model, expected, tolerance in _MARKS:
        bits = decoded_bits(votes, expected.size).astype(np.uint8)
        bit_errors[model] = errors = int(np.count_nonzero(bits != expected))
        if errors <= tolerance:
            return make_signal("sd_watermark", FOUND, STRONG_AI, message("provenance.watermark.found", model=model),
                               model=model, bit_errors=errors, bits=int(expected.size), rows_checked=rows)
    return make_signal("sd_watermark", NOT_FOUND, NONE, message("provenance.watermark.not_found"),
                       checked=True, rows_checked=rows, bit_errors=bit_errors)


def watermark_skipped() -> Signal:
    """The ``sd_watermark`` signal when the caller asked not to check it."""
    return make_signal("sd_watermark", NOT_FOUND, NONE, message("provenance.watermark.skipped"), checked=False)


def block_votes(decoder: object, bgr: np.ndarray) -> list[np.ndarray]:
    """Each watermarked channel's per-block votes (0/1), in the order invisible-watermark's decoder reads the blocks.

    The same computation as ``EmbedMaxDct.decode`` up to the bits: the chroma planes' Haar DWT approximation
    is cut into ``block``×``block`` tiles, row by row, and a tile votes 1 when its largest AC coefficient
    (by magnitude; the first one on ties) sits in the upper half of its ``scale`` step. The decoder does this
    in a Python loop over every tile, once per mark length (80 ms a photo, 15 % of the whole path: `make bench`);
    the votes do not depend on the mark's length, so they are computed once, with numpy, for both marks.
    ``tests/test_provenance.py`` checks the bits against the library's own decoder.
    """
    import cv2
    import pywt

    block, scales = decoder._block, decoder._scales  # the library's parameters, never restated here
    height, width = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    votes = []
    for channel in range(2):  # the library's decoder reads the first two planes only, those with a scale
        if scales[channel] <= 0:
            continue
        approximation, _ = pywt.dwt2(yuv[: height // 4 * 4, : width // 4 * 4, channel], "haar")
        votes.append(_tile_votes(approximation, block, scales[channel]))
    return votes


def _tile_votes(plane: np.ndarray, block: int, scale: float) -> np.ndarray:
    tiles_down, tiles_across = plane.shape[0] // block, plane.shape[1] // block
    tiles = plane[: tiles_down * block, : tiles_across * block].reshape(tiles_down, block, tiles_across, block)
    tiles = tiles.swapaxes(1, 2).reshape(-1, block * block)
    largest_ac = np.argmax(np.abs(tiles[:, 1:]), axis=1) + 1
    magnitude = np.abs(tiles[np.arange(len(tiles)), largest_ac])
    return (magnitude % scale > 0.5 * scale).astype(np.float64)


def decoded_bits(votes: list[np.ndarray], length: int) -> np.ndarray:
    """The mark's ``length`` bits: tile ``n`` of each plane votes for bit ``n % length``; a bit is set when its mean vote × 255 > 127."""
    sums, counts = np.zeros(length), np.zeros(length)
    for plane in votes:
        bit_of_tile = np.arange(len(plane)) % length
        sums += np.bincount(bit_of_tile, weights=plane, minlength=length)
        counts += np.bincount(bit_of_tile, minlength=length)
    with np.errstate(invalid="ignore", divide="ignore"):  # a bit no tile voted for is unset, as in the library
        return sums / counts * 255 > 127
