"""The metadata a file's header carries, read once for every check: text chunks, EXIF fields, XMP values.

:meth:`Metadata.read` reads each part separately, so a broken EXIF block does not hide the XMP;
a part that fails is named in ``errors`` for the checks to report. XMP is read with Pillow's
``getxmp()`` and, where that finds no digital source type, by a bounded scan of the raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from aiornot.io.decode import DecodedImage
from aiornot.evidence.provenance.signals import describe


class HeaderView:
    """What the metadata readers use of a Pillow image (format, ``info``, EXIF, XMP), taken from a
    :class:`~aiornot.io.decode.DecodedImage` that kept them from its header parse."""

    def __init__(self, decoded: DecodedImage) -> None:
        self.format, self.info, self._exif = decoded.format, decoded.info, decoded.exif

    def getexif(self) -> Image.Exif:
        return self._exif if self._exif is not None else Image.Exif()

    def getxmp(self) -> dict:
        # Pillow reads XMP from ``info["xmp"]`` alone; a 1-pixel carrier lends it that parser.
        carrier = Image.new("1", (1, 1))
        carrier.info = dict(self.info)
        return carrier.getxmp()


@dataclass
class Metadata:
    """Text chunks, EXIF fields and XMP values of one file; ``errors`` names parts that failed."""

    text: dict[str, str] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    xmp_source_types: list[str] = field(default_factory=list)
    xmp_creator_tools: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, image: Image.Image | HeaderView, data: bytes) -> Metadata:
        """Read each part separately, so a broken EXIF block does not hide the XMP."""
        meta = cls()
        for part, reader in (("text", _read_text), ("exif", _read_exif), ("xmp", _read_xmp)):
            try:
                reader(image, data, meta)
            except Exception as error:  # noqa: BLE001 - a damaged part is reported, not raised
                meta.errors[part] = describe(error)
        return meta


def _read_text(image: Image.Image | HeaderView, _data: bytes, meta: Metadata) -> None:
    # PNG tEXt/zTXt/iTXt chunks before the image data arrive as str values of `info` (Pillow
    # writes them there, and so do A1111 and ComfyUI); JPEG/GIF comments arrive as bytes.
    for key, value in image.info.items():
        if isinstance(value, str) and key != "XML:com.adobe.xmp":
            meta.text[str(key)] = value
    comment = image.info.get("comment")
    if isinstance(comment, bytes) and comment:
        meta.text["comment"] = comment.decode("utf-8", "replace")


_EXIF_BASE = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x010E: "ImageDescription",
              0x013B: "Artist"}
_EXIF_SUB = {0x829A: "ExposureTime", 0x829D: "FNumber", 0x8827: "ISOSpeedRatings",
             0x9003: "DateTimeOriginal", 0x9286: "UserComment", 0xA434: "LensModel"}
_EXIF_IFD_POINTER = 0x8769


def _read_exif(image: Image.Image | HeaderView, _data: bytes, meta: Metadata) -> None:
    # Pillow's PNG getexif() decodes all pixels when the eXIf chunk is not in the header; we only
    # want metadata here, so a PNG without an early eXIf chunk is treated as having none.
    if image.format == "PNG" and "exif" not in image.info:
        return
    exif = image.getexif()
    fields = {name: exif.get(tag) for tag, name in _EXIF_BASE.items()}
    sub = exif.get_ifd(_EXIF_IFD_POINTER)
    fields.update({name: sub.get(tag) for tag, name in _EXIF_SUB.items()})
    for name, value in fields.items():
        cleaned = _clean_exif_value(name, value)
        if cleaned not in (None, ""):
            meta.exif[name] = cleaned


def _clean_exif_value(name: str, value: Any) -> Any:
    if name == "UserComment" and isinstance(value, bytes):
        return _decode_user_comment(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")
    if isinstance(value, str):
        return value.strip("\x00 ")
    return value


def _decode_user_comment(raw: bytes) -> str:
    """EXIF UserComment: an 8-byte character-code prefix, then the text (A1111 writes UNICODE)."""
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # The standard says UCS-2 in the file's byte order; writers disagree, so take the reading
        # with more printable characters.
        readings = [body.decode(codec, "replace") for codec in ("utf-16-be", "utf-16-le")]
        return max(readings, key=lambda text: sum(ch.isprintable() for ch in text)).strip("\x00 ")
    if prefix.startswith((b"ASCII", b"\x00\x00\x00\x00\x00\x00\x00\x00", b"JIS")):
        return body.decode("utf-8", "replace").strip("\x00 ")
    return raw.decode("utf-8", "replace").strip("\x00 ")


def _read_xmp(image: Image.Image | HeaderView, data: bytes, meta: Metadata) -> None:
    tree = image.getxmp() if hasattr(image, "getxmp") else {}
    meta.xmp_source_types.extend(_values_under(tree, "DigitalSourceType"))
    meta.xmp_creator_tools.extend(_values_under(tree, "CreatorTool"))
    if not meta.xmp_source_types:
        # getxmp() returns nothing for XMP that Pillow does not look for (TIFF packets without the
        # tag it expects, PNG iTXt after the image data, odd APP1 layouts); scan the raw bytes.
        raw = _raw_xmp_values(data)
        meta.xmp_source_types.extend(raw["DigitalSourceType"])
        meta.xmp_creator_tools.extend(v for v in raw["CreatorTool"] if v not in meta.xmp_creator_tools)


def _values_under(tree: Any, key: str) -> list[str]:
    """Every string value under ``key`` in Pillow's getxmp() dict (iterative: XMP may nest deep)."""
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if name == key:
                    found.extend(_strings_in(value))
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _strings_in(value: Any) -> Iterator[str]:
    # A value is a string, an rdf:resource attribute, text in an element, or a list (rdf:Seq/Alt).
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for key in ("resource", "text", "li", "Alt", "Seq", "Bag"):
            if key in value:
                yield from _strings_in(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


_XMP_TAGS = ((b"<x:xmpmeta", b"</x:xmpmeta>"), (b"<x:xapmeta", b"</x:xapmeta>"))
_XMP_MAX_PACKETS = 4
_XMP_MAX_PACKET_BYTES = 2 * 1024 * 1024


def _raw_xmp_values(data: bytes) -> dict[str, list[str]]:
    """Find XMP packets in the raw bytes and read DigitalSourceType/CreatorTool from them."""
    found: dict[str, list[str]] = {"DigitalSourceType": [], "CreatorTool": []}
    for packet in _xmp_packets(data):
        for key, values in _xmp_packet_values(packet).items():
            found[key].extend(values)
    return found


def _xmp_packets(data: bytes) -> Iterator[bytes]:
    """Up to a few ``<x:xmpmeta>…</x:xmpmeta>`` packets, each of bounded size."""
    for open_tag, close_tag in _XMP_TAGS:
        start = 0
        for _ in range(_XMP_MAX_PACKETS):
            begin = data.find(open_tag, start)
            end = data.find(close_tag, begin, begin + _XMP_MAX_PACKET_BYTES) if begin >= 0 else -1
            if end < 0:
                break
            yield data[begin:end + len(close_tag)]
            start = end


def _xmp_packet_values(packet: bytes) -> dict[str, list[str]]:
    # defusedxml refuses entity expansion and external entities: XMP comes from untrusted files.
    from defusedxml import ElementTree

    values: dict[str, list[str]] = {"DigitalSourceType": [], "CreatorTool": []}
    try:
        root = ElementTree.fromstring(packet)
    except Exception:  # noqa: BLE001 - a malformed or hostile packet is skipped, not fatal
        return values
    resource = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
    for element in root.iter():
        for key in values:
            if _local(element.tag) == key:
                text = (element.text or "").strip() or element.attrib.get(resource, "")
                values[key].extend(t for t in [text.strip()] if t)
            values[key].extend(v.strip() for k, v in element.attrib.items() if _local(k) == key)
    return values


def _local(name: Any) -> str:
    return str(name).rsplit("}", 1)[-1]
