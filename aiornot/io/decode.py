"""One safe decoder for every image that enters aiornot.

Training, evaluation, the CLI, the service and batch scoring all call :func:`open_image`, so a
file is judged the same way everywhere. The decoder:

* refuses empty, oversized and non-image input with a clear :class:`ImageDecodeError`;
* checks the declared pixel count *before* decoding (decompression bombs never reach memory);
* refuses a JPEG or PNG whose markers or chunks exceed fixed caps before Pillow parses them
  (:mod:`aiornot.io.headers`), so a crafted header costs bounded time and memory;
* applies the EXIF orientation, takes the first frame of animations, and turns every mode
  (grey, CMYK, palette, 16-bit, alpha) into RGB ``uint8`` — noting what it changed; an embedded
  ICC profile (Display P3, Adobe RGB, a print CMYK profile) is converted to sRGB, and a CMYK JPEG
  is read with Adobe's inverted polarity only when it carries Adobe's APP14 marker;
* reports container facts (format, size, JPEG quality, EXIF present) separately from the pixels,
  because the detector must decide from pixels and the container is a known shortcut.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from aiornot.io import colour
from aiornot.io.headers import StructureError, check_structure

ImageSource = Union[str, Path, bytes, bytearray, memoryview, BinaryIO]

#: Formats the decoder accepts. Pillow is told to try only these (no EPS, no PSD, no ICNS …). AVIF, a
#: common web and generator output, where this Pillow build decodes it (the pinned wheels do).
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO") + (
    ("AVIF",) if features.check("avif") else ())
#: Default limits: generous for camera photos (a 48 MP phone photo fits), fatal for bombs.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PIXELS = 64_000_000
MIN_SIDE = 16

# Leading bytes of common non-image files, so an error can say what the file really is.
_MAGIC_NAMES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or DOCX/XLSX)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"<?xml", "an XML document"),
    (b"<svg", "an SVG drawing (vector images are not photos)"),
    (b"<!DOCTYPE", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"8BPS", "a Photoshop document"),
)


# ISO base media files (HEIC, AVIF, MP4, MOV) name their kind in the brand that follows "ftyp" at byte 4;
# the box before it has no fixed length, so the brand is read there rather than matched as a prefix.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_VIDEO_BRANDS = frozenset({b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  ", b"3gp4", b"3gp5", b"3g2a"})
HEIC_ADVICE = ("HEIC/HEIF photos (what iPhones save by default) are not accepted; convert it to JPEG "
               "(on an iPhone: Settings › Camera › Formats › Most Compatible)")


class ImageDecodeError(ValueError):
    """An input that cannot be turned into pixels; ``code`` is stable, ``str()`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    """Pixels plus the container facts that came with them.

    ``pixels`` is ``H×W×3`` RGB ``uint8`` with the EXIF orientation applied. Everything else
    describes the file, not the picture, and must never be fed to the CNN.
    """

    pixels: np.ndarray
    format: str
    original_mode: str
    n_frames: int = 1
    exif_orientation: int | None = None
    has_exif: bool = False
    jpeg_quality: int | None = None
    file_size: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: The container's metadata as the header parse found it (Pillow's ``info``, the EXIF), so
    #: :func:`aiornot.evidence.provenance.inspect` reads it without parsing the header again.
    info: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    exif: Image.Exif | None = field(default=None, repr=False, compare=False)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def to_pil(self) -> Image.Image:
        """The pixels as a Pillow RGB image (a copy, without any metadata)."""
        return Image.fromarray(self.pixels, mode="RGB")


def read_bytes(source: ImageSource, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a path, bytes or binary file object into bytes, refusing empty or oversized input."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        data = _read_regular_file(Path(source), max_bytes)
    elif callable(getattr(source, "read", None)):
        data = source.read(max_bytes + 1)
    else:
        raise TypeError(f"expected a path, the file's bytes or a binary file object, got {type(source).__name__} "
                        "(Detector.predict also takes pixels in memory: a numpy array or a Pillow image)")
    if not data:
        raise ImageDecodeError("empty", "the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageDecodeError("file_too_large", _too_large_message(len(data), max_bytes))
    return data


_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, at most ``max_bytes + 1`` of them, whatever ``st_size`` claims.

    A FIFO would block the read for ever and ``/dev/zero`` never ends while both report a size of
    0, so the type is checked with ``os.stat`` before opening, and again on the open descriptor
    (opened non-blocking: the path could be swapped for a FIFO in between).
    """
    try:
        info = os.stat(path)
    except OSError as error:
        raise _stat_error(path, error) from error
    _require_regular(path, info)
    if info.st_size > max_bytes:
        raise ImageDecodeError("file_too_large", _too_large_message(info.st_size, max_bytes))
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(descriptor, "rb") as handle:
            _require_regular(path, os.fstat(handle.fileno()))
            return handle.read(max_bytes + 1)
    except OSError as error:
        raise ImageDecodeError("read_error", f"cannot read {path}: {error.strerror or error}") from error


def _require_regular(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageDecodeError("not_a_file", f"{path} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _SPECIAL_FILES if test(info.st_mode)), "not a regular file")
        raise ImageDecodeError("not_a_file", f"{path} is {kind}, not an image file; it was not read")


def _stat_error(path: Path, error: OSError) -> ImageDecodeError:
    """Say which of the usual reasons a path cannot be looked at applies."""
    if error.errno == errno.ELOOP:
        return ImageDecodeError("symlink_loop", f"{path} is a symbolic link that loops back on itself")
    if isinstance(error, FileNotFoundError) and os.path.islink(path):
        return ImageDecodeError("broken_symlink", f"{path} is a symbolic link to a file that does not exist")
    if isinstance(error, FileNotFoundError):
        return ImageDecodeError("not_found", f"no such file: {path}")
    return ImageDecodeError("read_error", f"cannot read {path}: {error.strerror or error}")


def describe_non_image(data: bytes) -> str:
    """Say what kind of file a non-image looks like, e.g. ``it looks like a PDF document``.

    Only the kind is named, never the file's own bytes: an error message is shown and may be
    logged, and the first bytes of a text file can be a person's data.
    """
    head = data[:32]
    brand = _iso_brand(head)
    if brand in _HEIF_BRANDS:
        return "it looks like a HEIC/HEIF photo"
    if brand in _AVIF_BRANDS:
        return "it looks like an AVIF image"
    if brand in _VIDEO_BRANDS:
        return "it looks like a video (MP4 or QuickTime), not a photo"
    for magic, name in _MAGIC_NAMES:
        if head.lstrip().startswith(magic) or magic in head[:16]:
            return f"it looks like {name}"
    if _looks_like_text(head):
        return "it is a text file"
    return "its first bytes match no image format"


@dataclass
class ImageHeader:
    """An image's header, parsed once: the pixel budget, the decoder and provenance share it.

    ``image`` is Pillow's lazily opened image (header read, pixels not decoded). One header belongs
    to one request at a time: Pillow images are not safe to use from two threads at once.
    """

    data: bytes
    image: Image.Image

    @property
    def format(self) -> str:
        return str(self.image.format)

    @property
    def pixels(self) -> int:
        """Width × height as the header declares them (what decoding would allocate)."""
        width, height = self.image.size
        return int(width) * int(height)

    def close(self) -> None:
        """Free Pillow's copy of the pixels (once decoded, they live in the :class:`DecodedImage`)."""
        self.image.close()


def read_header(source: ImageSource, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ImageHeader:
    """Read the bytes and parse the header only (bounded by :mod:`aiornot.io.headers`); :class:`ImageDecodeError` otherwise."""
    data = read_bytes(source, max_bytes=max_bytes)
    return ImageHeader(data, open_header(data))


def open_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    header: ImageHeader | None = None,
) -> DecodedImage:
    """Decode an image safely into RGB ``uint8`` pixels.

    Raises :class:`ImageDecodeError` (never a Pillow or OS exception) when the input is empty,
    too large, not an image, a format we do not accept, a decompression bomb, or corrupt.
    ``header`` (from :func:`read_header` on the same bytes) saves parsing the header again;
    ``source`` is then ignored.
    """
    header = header or read_header(source, max_bytes=max_bytes)
    data, image = header.data, header.image
    _check_declared_size(image.size, max_pixels)
    notes: list[str] = []
    # No warnings.catch_warnings() here: it is not thread-safe (the service decodes in threads),
    # and bombs are already refused by the declared-size check above, before any decoding.
    try:
        # Counting frames parses every frame header, so a damaged later frame fails here.
        n_frames = int(getattr(image, "n_frames", 1) or 1)
        if n_frames > 1:
            image.seek(0)
            notes.append(f"first of {n_frames} frames used")
        image.load()
        exif = image.getexif()
        oriented, orientation = _upright(image, exif)
        inked = colour.fix_cmyk_polarity(oriented, image.info, str(image.format), notes)
        pixels = _to_rgb_array(colour.to_srgb(inked, image.info, notes), notes)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError("too_many_pixels", f"image rejected as a decompression bomb: {error}") from error
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, struct.error, MemoryError) as error:
        raise ImageDecodeError("corrupt", f"the {image.format} file is damaged or truncated: {error}") from error
    if oriented is not image:
        notes.append(_orientation_note(orientation))
    return DecodedImage(
        pixels=pixels,
        format=str(image.format),
        original_mode=str(image.mode),
        n_frames=n_frames,
        exif_orientation=int(orientation) if orientation else None,
        has_exif=bool(exif),
        jpeg_quality=estimate_jpeg_quality(image),
        file_size=len(data),
        notes=tuple(notes),
        info=dict(image.info),
        exif=exif,
    )


def from_pixels(pixels: np.ndarray | Image.Image, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Pixels already in memory, checked and converted as a decoded file's are, without a container (so no provenance).

    A Pillow image in any mode goes through the decoder's own conversion (grey, 16-bit, alpha, palette → RGB).
    A numpy array is H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA, flattened on white), of ``uint8``, ``uint16``
    (reduced to 8 bits) or floats in 0–1. Anything else, a NaN or a side under 16 px is an
    :class:`ImageDecodeError` (``invalid_pixels``, ``too_small``, ``too_many_pixels``) that says what to change.
    """
    notes: list[str] = []
    if isinstance(pixels, Image.Image):
        _check_declared_size(pixels.size, max_pixels)
        upright, orientation = _upright(pixels, pixels.getexif())  # Image.open(path) keeps the tag: rotate as the file is
        if upright is not pixels:
            notes.append(_orientation_note(orientation))
        return DecodedImage(pixels=_to_rgb_array(upright, notes), format="PIXELS", original_mode=str(pixels.mode), notes=tuple(notes))
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    mode = "L" if array.ndim == 2 else {3: "RGB", 4: "RGBA"}.get(array.shape[2]) if array.ndim == 3 else None
    if mode is None:
        hint = " (it looks channels-first: transpose it to H×W×C)" if array.ndim == 3 and array.shape[0] in (1, 3, 4) else ""
        raise ImageDecodeError("invalid_pixels", f"pixels must be H×W, H×W×3 or H×W×4, got shape {array.shape}{hint}")
    height, width = array.shape[:2]
    _check_declared_size((width, height), max_pixels)
    return DecodedImage(pixels=_rgb_from_array(_as_uint8(array, notes), mode, notes), format="PIXELS", original_mode=mode,
                        notes=tuple(notes))


def _as_uint8(array: np.ndarray, notes: list[str]) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        notes.append("16-bit reduced to 8-bit")
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageDecodeError("invalid_pixels", "the pixels hold NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise ImageDecodeError("invalid_pixels", f"float pixels must lie in 0–1, these run from {low:g} to {high:g}; "
                                   "for 0–255 values pass them as uint8 (array.astype(np.uint8))")
        return np.round(array * 255.0).astype(np.uint8)
    raise ImageDecodeError("invalid_pixels", f"pixels must be uint8, uint16 or float in 0–1, not {array.dtype}")


def _rgb_from_array(array: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    if mode == "RGB":
        return np.ascontiguousarray(array)
    return _to_rgb_array(Image.fromarray(np.ascontiguousarray(array)), notes)  # uint8 H×W → L, H×W×4 → RGBA


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """Estimate the IJG quality (1–100) a JPEG was saved with, from its luminance table.

    Returns ``None`` for non-JPEG images. Encoders with custom tables (some cameras) give an
    approximate value; it is a descriptive statistic, not a forensic verdict.
    """
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    luminance = np.asarray(tables[0], dtype=np.float64)[:64]
    scale = float(np.mean(luminance / _IJG_LUMINANCE[: luminance.size]) * 100.0)
    if scale <= 0:
        return None
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


def open_header(data: bytes) -> Image.Image:
    """Open an image lazily (header only) with the accepted formats; :class:`ImageDecodeError` otherwise."""
    Image.init()  # register every plugin, so the allowed-format list can be honoured
    try:
        check_structure(data)  # before Pillow: its header parsers loop in Python per marker and chunk
    except StructureError as error:
        raise ImageDecodeError("too_much_metadata", str(error)) from None
    try:
        # MPO (multi-picture JPEG) has no opener of its own: the JPEG opener returns it.
        openers = [name for name in ALLOWED_FORMATS if name in Image.OPEN]
        return Image.open(io.BytesIO(data), formats=openers)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError("too_many_pixels", f"image rejected as a decompression bomb: {error}") from error
    except UnidentifiedImageError as error:
        try:
            # Recognised by Pillow but not on our list (EPS, PSD, ICO …): say so rather than "not an image".
            other = Image.open(io.BytesIO(data)).format
        except Exception:  # noqa: BLE001 - any failure here just means "not an image"
            other = None
        unsupported = _unsupported_message(data, other)
        if unsupported:
            raise ImageDecodeError("unsupported_format", unsupported) from error
        raise ImageDecodeError("not_an_image", f"not an image: {describe_non_image(data)}") from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageDecodeError("corrupt", f"the image header is damaged: {error}") from error


def _check_declared_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageDecodeError(
            "too_many_pixels",
            f"image declares {width}×{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (a decompression bomb or an unusually large scan)",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageDecodeError("too_small", f"image is {width}×{height}; at least {MIN_SIDE} px per side is needed")


def _to_rgb_array(image: Image.Image, notes: list[str]) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: Pillow's convert("RGB") would clip everything above 255 to white.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append("16-bit grey reduced to 8-bit")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        peak = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        grey = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append("floating-point grey reduced to 8-bit")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as an ID photo's background would be.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparency flattened onto white")
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    if mode != "RGB":
        notes.append(f"{mode} converted to RGB")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _upright(image: Image.Image, exif: Image.Exif | None) -> tuple[Image.Image, int | None]:
    """``image`` turned as its EXIF orientation says (itself when there is none, or 1), and that orientation."""
    orientation = exif.get(0x0112) if exif else None
    return (ImageOps.exif_transpose(image) if orientation not in (None, 1) else image), orientation


def _orientation_note(orientation: int | None) -> str:
    return f"EXIF orientation {orientation} applied"


def _iso_brand(head: bytes) -> bytes | None:
    """The major brand of an ISO base media file (``heic``, ``avif``, ``mp42`` …), or None for other data."""
    return head[8:12] if head[4:8] == b"ftyp" and len(head) >= 12 else None


def _unsupported_message(data: bytes, pillow_format: str | None) -> str | None:
    """What to tell the user when the file is a picture in a format we do not decode, or None when it is not one."""
    brand = _iso_brand(data[:32])
    if brand in _HEIF_BRANDS:
        return f"{HEIC_ADVICE} or to one of {', '.join(ALLOWED_FORMATS)}"
    if brand in _AVIF_BRANDS and "AVIF" not in ALLOWED_FORMATS:
        return f"this installation's Pillow cannot decode AVIF; convert it to one of {', '.join(ALLOWED_FORMATS)}"
    if pillow_format:
        return f"{pillow_format} images are not accepted; use one of {', '.join(ALLOWED_FORMATS)}"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        # Not final: the sample may end inside a multi-byte character (Korean text, say).
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _too_large_message(size: int, limit: int) -> str:
    return f"file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB"


# The IJG (libjpeg) standard luminance quantisation table at quality 50, in natural (row) order,
# which is the order Pillow reports tables in.
_IJG_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)
