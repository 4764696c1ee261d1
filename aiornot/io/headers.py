"""A bounded walk over an image container's structure, before any full parse.

Pillow reads JPEG markers and PNG chunks one by one in Python, and keeps every APPn segment it
meets. A 19 MB JPEG made of five million empty APP15 markers took it 13 s and 728 MB just to open
the header; a PNG of 1.3 million tiny text chunks stalled it for seconds too. :func:`check_structure`
walks the same structure with a handful of integer reads per segment and stops at the first
segment over the caps below, so the cost of refusing such a file is bounded by the caps, never by
the file. It decides nothing about the picture; Pillow still parses what passes.

Only JPEG (and MPO, which is JPEG) and PNG are walked: they are the formats whose Python header
parsers loop per segment. The others go to their own decoders (libwebp, Pillow's TIFF and GIF readers).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Segments a JPEG may hold before its first scan (APPn, DQT, DHT, SOF, COM …). A camera photo has
#: about a dozen; an ICC profile split over many APP2 segments adds tens.
MAX_JPEG_SEGMENTS = 1_000
#: Metadata bytes (segments, or PNG chunks other than image data) a file may carry in all.
MAX_METADATA_BYTES = 16 * 1024 * 1024
#: Stray bytes between JPEG markers (fill bytes and junk): Pillow skips them one at a time.
MAX_JPEG_STRAY_BYTES = 4 * 1024
#: PNG chunks other than image data (tEXt, iTXt, zTXt, eXIf, iCCP, sPLT …).
MAX_PNG_METADATA_CHUNKS = 1_000
#: PNG chunks of any kind: an encoder writing 8 KB IDAT chunks needs 2,500 for a 20 MB file.
MAX_PNG_CHUNKS = 20_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IMAGE_DATA = frozenset({b"IDAT", b"fdAT", b"fcTL"})  # image data and APNG frame control
# JPEG markers without a length field: TEM, RST0–7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9})
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


class StructureError(ValueError):
    """The container holds more structure than any photo needs; ``what`` says which cap it met."""

    def __init__(self, container: str, what: str, limit: str) -> None:
        super().__init__(f"the {container} holds {what}, over the limit of {limit} (a crafted file or a broken writer); "
                         "re-save the photo with an ordinary program and send it again")
        self.container, self.what, self.limit = container, what, limit


@dataclass
class _Tally:
    """What a walk has counted so far."""

    segments: int = 0
    metadata_bytes: int = 0
    stray_bytes: int = 0


def check_structure(data: bytes) -> None:
    """Raise :class:`StructureError` when a JPEG or PNG holds more markers, chunks or metadata than the caps.

    Other data (other formats, truncated files) passes: the decoder that follows says what it is.
    """
    if data[:2] == b"\xff\xd8":
        _walk_jpeg(data)
    elif data[:8] == PNG_SIGNATURE:
        _walk_png(data)


def _walk_jpeg(data: bytes) -> None:
    """Walk the markers from SOI to the first SOS (what Pillow's header parser reads in Python)."""
    tally, position, size = _Tally(), 2, len(data)
    while position < size:
        if data[position] != 0xFF:  # junk before a marker: Pillow skips it byte by byte
            position = _stray(tally, data, position + 1)
            continue
        marker = data[position + 1] if position + 1 < size else None
        if marker is None:
            return
        if marker == 0xFF:  # a fill byte
            position = _stray(tally, data, position + 1)
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            if marker == _JPEG_EOI:
                return
            continue
        if position + 4 > size:
            return
        length = struct.unpack_from(">H", data, position + 2)[0]
        tally.segments += 1
        tally.metadata_bytes += length + 2
        if tally.segments > MAX_JPEG_SEGMENTS:
            raise StructureError("JPEG", f"more than {MAX_JPEG_SEGMENTS:,} markers before its image data",
                                 f"{MAX_JPEG_SEGMENTS:,} markers")
        _check_metadata_bytes("JPEG", tally)
        if marker == _JPEG_SOS:
            return  # the entropy-coded data follows: libjpeg reads it in C
        position += 2 + length


def _stray(tally: _Tally, data: bytes, position: int) -> int:
    tally.stray_bytes += 1
    if tally.stray_bytes > MAX_JPEG_STRAY_BYTES:
        raise StructureError("JPEG", f"more than {MAX_JPEG_STRAY_BYTES:,} stray bytes between its markers",
                             f"{MAX_JPEG_STRAY_BYTES:,} bytes")
    return position


def _walk_png(data: bytes) -> None:
    """Walk every chunk to IEND: Pillow reads those before the image data when it opens the file,
    and those after it when it loads the pixels, one Python call per chunk either way."""
    tally, metadata_chunks, position, size = _Tally(), 0, len(PNG_SIGNATURE), len(data)
    while position + 8 <= size:
        length, kind = struct.unpack_from(">I4s", data, position)
        tally.segments += 1
        if tally.segments > MAX_PNG_CHUNKS:
            raise StructureError("PNG", f"more than {MAX_PNG_CHUNKS:,} chunks", f"{MAX_PNG_CHUNKS:,} chunks")
        if kind not in _PNG_IMAGE_DATA:
            metadata_chunks += 1
            tally.metadata_bytes += length + 12
            if metadata_chunks > MAX_PNG_METADATA_CHUNKS:
                raise StructureError("PNG", f"more than {MAX_PNG_METADATA_CHUNKS:,} metadata chunks",
                                     f"{MAX_PNG_METADATA_CHUNKS:,} chunks")
            _check_metadata_bytes("PNG", tally)
        if kind == b"IEND":
            return
        position += 12 + length


def _check_metadata_bytes(container: str, tally: _Tally) -> None:
    if tally.metadata_bytes > MAX_METADATA_BYTES:
        megabytes = MAX_METADATA_BYTES // (1024 * 1024)
        raise StructureError(container, f"more than {megabytes} MB of metadata", f"{megabytes} MB")
