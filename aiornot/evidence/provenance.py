"""Provenance evidence: what the file itself says about where it came from.

The CNN sees pixels only. Everything a file *declares* about its origin is read here, before the
pixels, and reported as named signals that the user can see and check:

=====================  =============================================================  ===========
signal                 what is read                                                   strength
=====================  =============================================================  ===========
``c2pa``               C2PA manifest (c2pa-python): valid/invalid, claim generator,   strong_ai
                       ``digitalSourceType`` of its actions/assertions
``xmp_source_type``    IPTC ``DigitalSourceType`` in XMP (Pillow ``getxmp()``, then a strong_ai
                       raw XMP packet scan for files where that finds nothing)
``generator_metadata`` PNG text chunks of AUTOMATIC1111 (``parameters``), ComfyUI     strong_ai
                       (``prompt``, ``workflow``), InvokeAI …; EXIF Software /
                       ImageDescription / UserComment and XMP CreatorTool naming a
                       known generator (Stable Diffusion, Midjourney, DALL·E …)
``sd_watermark``       Stable Diffusion invisible watermark (DWT-DCT): SD v1 text     strong_ai
                       ``StableDiffusionV1``, SDXL 48 bits ``0xB3EC907BB19E``
``camera_exif``        Make, Model, exposure time, f-number, ISO, DateTimeOriginal    weak_camera
=====================  =============================================================  ===========

Each :class:`Signal` has a status (``found``, ``not_found``, ``invalid``, ``error``, or
``unavailable`` when the check's optional dependency is not installed) and a strength
(``strong_ai``, ``weak_ai``, ``weak_camera``, ``none``). ``weak_ai`` is used for a C2PA manifest
that declares AI generation but fails verification, and for XMP declaring synthetic (not
camera, not AI) media; ``weak_camera`` for camera EXIF and for a declared digital capture.

The combination rule (:func:`combine_verdict`; the UI shows its text)
--------------------------------------------------------------------
1. **The file declares it was generated → AI.** A valid C2PA manifest or an XMP
   ``DigitalSourceType`` declaring trained algorithmic media (``trainedAlgorithmicMedia``,
   ``compositeWithTrainedAlgorithmicMedia``, ``algorithmicMedia``), generator text chunks or
   EXIF/XMP fields naming a generator, or a decoded Stable Diffusion watermark make the verdict
   ``ai`` whatever the pixels say. A C2PA signer need not be on a trust list for this: a file
   that declares itself generated gives a forger nothing.
2. **Otherwise the pixel verdict stands** (``inconclusive`` when there is no pixel verdict).
3. An *invalid* C2PA manifest is shown but does not change the verdict on its own.
4. Camera EXIF is shown as context only and moves nothing: EXIF is trivially forged, so it never
   turns an ``ai`` pixel verdict into ``real`` (nor ``inconclusive`` into ``real``).
5. Absence is never evidence: no manifest, no metadata and no watermark say nothing about a file,
   because re-saving, screenshots and messengers strip all of them. The SD watermark in
   particular does not survive resizing or a JPEG save with the usual 4:2:0 chroma subsampling
   (it lives in the chroma channel; a 4:4:4 JPEG at q90 can keep it, so JPEGs are checked too).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import numbers
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

# open_header is the decoder's own header reader (format allow-list, bomb check, clear messages);
# reusing it keeps one definition of "an image we accept".
from aiornot.io.decode import DecodedImage, ImageDecodeError, open_header, open_image, read_bytes
from aiornot.contract.jsonsafe import json_safe
from aiornot.contract.result import VERDICT_TEXTS, VERDICTS

FOUND, NOT_FOUND, INVALID, ERROR, UNAVAILABLE = "found", "not_found", "invalid", "error", "unavailable"
STRONG_AI, WEAK_AI, WEAK_CAMERA, NONE = "strong_ai", "weak_ai", "weak_camera", "none"
STATUSES = (FOUND, NOT_FOUND, INVALID, ERROR, UNAVAILABLE)
#: What to install for the watermark check (the ``watermark`` extra; ``make env`` installs it).
WATERMARK_INSTALL = "pip install --no-deps invisible-watermark==0.2.0 PyWavelets==1.9.0"
#: Strongest first: AI evidence outranks camera evidence, because camera EXIF is trivially forged.
STRENGTHS = (STRONG_AI, WEAK_AI, WEAK_CAMERA, NONE)

#: Signal names, in report order, with the labels the rule text uses (English, Korean).
SIGNAL_LABELS: dict[str, tuple[str, str]] = {
    "c2pa": ("C2PA manifest", "C2PA 매니페스트"),
    "xmp_source_type": ("IPTC digital source type (XMP)", "IPTC 디지털 소스 유형(XMP)"),
    "generator_metadata": ("generator metadata", "생성 도구 메타데이터"),
    "sd_watermark": ("Stable Diffusion watermark", "Stable Diffusion 워터마크"),
    "camera_exif": ("camera EXIF", "카메라 EXIF"),
}

#: The complete combination rule, as shown to users (see the module docstring).
RULE_EN = (
    "If the file itself declares it was generated (a valid C2PA manifest or IPTC/XMP digital "
    "source type saying trained algorithmic media, generator metadata, or a Stable Diffusion "
    "watermark), the verdict is AI whatever the pixels say. Otherwise the pixel verdict stands. "
    "An invalid C2PA manifest is shown but does not change the verdict on its own. Camera EXIF is "
    "shown as context only: it is easy to forge and never changes the verdict. Missing metadata "
    "is not evidence of a real photo."
)
RULE_KO = (
    "파일 자체에 AI로 생성되었다는 표시(유효한 C2PA 매니페스트나 IPTC/XMP 디지털 소스 유형의 AI 생성 "
    "선언, 생성 도구 메타데이터, Stable Diffusion 워터마크)가 있으면 픽셀 분석 결과와 관계없이 AI로 "
    "판정합니다. 그 밖에는 픽셀 분석 결과를 따릅니다. 유효하지 않은 C2PA 매니페스트는 표시만 하며 그것만으로 "
    "판정을 바꾸지 않습니다. 카메라 EXIF는 쉽게 위조할 수 있어 참고로만 표시하고 판정을 바꾸지 않습니다. "
    "메타데이터가 없다는 것은 실제 사진이라는 증거가 아닙니다."
)

_IPTC_AI = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"})
_IPTC_SYNTHETIC = frozenset({"compositeSynthetic", "digitalArt", "digitalCreation"})
_IPTC_CAMERA = frozenset({"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"})

_MAX_TEXT = 300  # characters of any metadata value kept in `details` (prompts can be pages long)


@dataclass(frozen=True)
class Signal:
    """One piece of provenance evidence, e.g. ``Signal('c2pa', 'found', 'strong_ai', …)``.

    ``details`` is made JSON-safe on construction (bytes, rationals and long text are converted),
    so a report can always be serialised.
    """

    name: str
    status: str
    strength: str
    summary: str
    summary_ko: str
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if self.strength not in STRENGTHS:
            raise ValueError(f"strength must be one of {STRENGTHS}, not {self.strength!r}")
        object.__setattr__(self, "details", json_safe(dict(self.details), finite=True, max_text=_MAX_TEXT, max_items=50,
                                                       max_depth=8, strict=False))


@dataclass(frozen=True)
class ProvenanceReport:
    """All provenance signals of one file, in a fixed order (see :data:`SIGNAL_LABELS`)."""

    signals: tuple[Signal, ...]

    def strongest(self) -> str:
        """The strongest evidence in the report: 'strong_ai' > 'weak_ai' > 'weak_camera' > 'none'."""
        present = {signal.strength for signal in self.signals}
        return next((strength for strength in STRENGTHS if strength in present), NONE)

    def to_dict(self) -> dict:
        """A JSON-safe dict: ``{"strongest": …, "signals": [{name, status, strength, …}, …]}``."""
        return {"strongest": self.strongest(), "signals": [asdict(signal) for signal in self.signals]}


# --------------------------------------------------------------------------------------------
# inspect()
# --------------------------------------------------------------------------------------------


def inspect(data: bytes, *, check_watermark: bool = True, decoded: DecodedImage | None = None) -> ProvenanceReport:
    """Read every provenance signal from an image file's bytes.

    Never raises for bad input: a file that is not an image gives every signal the status
    ``error`` with the decoder's message, and a check that fails on a damaged container gives that
    one signal ``error`` (or ``invalid`` for a damaged C2PA manifest). The Stable Diffusion
    watermark needs the pixels: ``decoded`` (these bytes already through
    :func:`aiornot.io.decode.open_image`) saves decoding them again; ``check_watermark=False`` skips it.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"inspect() takes the file's bytes, not {type(data).__name__}")
    try:
        data = read_bytes(data)  # refuses empty and oversized input, as the decoder does
        # The decoder's own header parse, when it has run: a header is parsed once per photo.
        image = _HeaderView(decoded) if decoded is not None and decoded.exif is not None else open_header(data)
    except ImageDecodeError as error:
        return _unreadable(error.code, error.message)
    except Exception as error:  # noqa: BLE001 - a hostile header must not escape inspect()
        return _unreadable("corrupt", f"the image header is damaged: {_describe(error)}")
    meta = _Metadata.read(image, data)
    checks: dict[str, Callable[[], Signal]] = {
        "c2pa": lambda: _check_c2pa(data, str(image.format)),
        "xmp_source_type": lambda: _check_source_type(meta),
        "generator_metadata": lambda: _check_generator(meta),
        "sd_watermark": lambda: _check_watermark(data, decoded) if check_watermark else _watermark_skipped(),
        "camera_exif": lambda: _check_camera(meta),
    }
    return ProvenanceReport(tuple(_guarded(name, check) for name, check in checks.items()))


class _HeaderView:
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


def _guarded(name: str, check: Callable[[], Signal]) -> Signal:
    # inspect() promises never to raise for bad input, and parsers of hostile files (Pillow,
    # c2pa's native library, XML) can fail in ways no one lists; any failure becomes an `error`
    # signal that names the problem instead of a traceback.
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - see above
        return _signal(name, ERROR, NONE, f"check failed: {_describe(error)}",
                       "확인 중 오류가 발생했습니다", error=_describe(error))


def _unreadable(code: str, message: str) -> ProvenanceReport:
    """The report for a file that is not a readable image: every signal says why it was not checked."""
    return ProvenanceReport(tuple(
        _signal(name, ERROR, NONE, f"not checked: {message}", "이미지 파일을 읽을 수 없어 확인하지 못했습니다",
                code=code, error=message)
        for name in SIGNAL_LABELS))


def _signal(name: str, status: str, strength: str, summary: str, summary_ko: str, **details: Any) -> Signal:
    return Signal(name, status, strength, summary, summary_ko, details)


# --------------------------------------------------------------------------------------------
# Metadata read once from the container header: text chunks, EXIF, XMP
# --------------------------------------------------------------------------------------------


@dataclass
class _Metadata:
    """Text chunks, EXIF fields and XMP values of one file; ``errors`` names parts that failed."""

    text: dict[str, str] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    xmp_source_types: list[str] = field(default_factory=list)
    xmp_creator_tools: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, image: Image.Image | _HeaderView, data: bytes) -> _Metadata:
        """Read each part separately, so a broken EXIF block does not hide the XMP."""
        meta = cls()
        for part, reader in (("text", _read_text), ("exif", _read_exif), ("xmp", _read_xmp)):
            try:
                reader(image, data, meta)
            except Exception as error:  # noqa: BLE001 - a damaged part is reported, not raised
                meta.errors[part] = _describe(error)
        return meta


def _read_text(image: Image.Image | _HeaderView, _data: bytes, meta: _Metadata) -> None:
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


def _read_exif(image: Image.Image | _HeaderView, _data: bytes, meta: _Metadata) -> None:
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


def _read_xmp(image: Image.Image | _HeaderView, data: bytes, meta: _Metadata) -> None:
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


# --------------------------------------------------------------------------------------------
# C2PA
# --------------------------------------------------------------------------------------------

_C2PA_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
              "TIFF": "image/tiff", "GIF": "image/gif"}


@functools.lru_cache(maxsize=1)
def _c2pa_context() -> Any:
    # Imported lazily: loading the native library is not needed to import aiornot. Reading must
    # never reach the network (offline machines would hang, and a remote manifest or OCSP answer
    # is not something an ID-photo officer can reproduce), so both fetches are switched off.
    import c2pa

    return c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})


def _check_c2pa(data: bytes, image_format: str) -> Signal:
    import c2pa

    mime = _C2PA_MIME.get(image_format)
    if mime is None:
        return _signal("c2pa", NOT_FOUND, NONE, f"no C2PA manifest (C2PA is not defined for {image_format})",
                       "C2PA 매니페스트 없음", format=image_format)
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=_c2pa_context())
    except c2pa.C2paError as error:
        return _c2pa_unreadable(data, error)
    if reader is None:
        return _signal("c2pa", NOT_FOUND, NONE, "no C2PA manifest", "C2PA 매니페스트 없음")
    with reader:
        store = json.loads(reader.json())
    return _c2pa_signal(store)


def _c2pa_unreadable(data: bytes, error: Exception) -> Signal:
    # A JUMBF box labelled c2pa means a manifest is there but broken (truncated, edited by a tool
    # that did not understand it): that is an invalid manifest, not a missing one.
    if b"jumb" in data and b"c2pa" in data:
        return _signal("c2pa", INVALID, NONE, "C2PA manifest present but unreadable",
                       "C2PA 매니페스트가 있으나 읽을 수 없습니다(손상 또는 변조 가능성)", error=_describe(error))
    return _signal("c2pa", ERROR, NONE, f"C2PA check failed: {_describe(error)}",
                   "C2PA 확인 중 오류가 발생했습니다", error=_describe(error))


def _c2pa_signal(store: dict) -> Signal:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest"), {})
    source_types = sorted({_iptc_code(v) for m in manifests.values() for v in _c2pa_source_types(m)})
    failures = [s.get("code") for s in store.get("validation_status") or []
                if isinstance(s, dict) and s.get("code") != "signingCredential.untrusted"]
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    valid = state in ("Valid", "Trusted")
    details = {"valid": valid, "trusted": state == "Trusted", "validation_state": state,
               "claim_generator": _claim_generator(active), "digital_source_types": source_types,
               "failures": failures, "signer": (active.get("signature_info") or {}).get("issuer")}
    declared_ai = sorted(set(source_types) & _IPTC_AI)
    if not valid:
        strength = WEAK_AI if declared_ai else NONE
        return _signal("c2pa", INVALID, strength, f"C2PA manifest fails verification ({', '.join(failures) or state})",
                       "C2PA 매니페스트 검증 실패(파일이 서명 후 변경되었을 수 있음)", **details)
    if declared_ai:
        return _signal("c2pa", FOUND, STRONG_AI, f"valid C2PA manifest declares AI generation ({declared_ai[0]})",
                       f"유효한 C2PA 매니페스트가 AI 생성을 선언합니다({declared_ai[0]})", **details)
    if set(source_types) & _IPTC_CAMERA:
        return _signal("c2pa", FOUND, WEAK_CAMERA, "valid C2PA manifest declares a camera capture",
                       "유효한 C2PA 매니페스트가 카메라 촬영을 선언합니다", **details)
    return _signal("c2pa", FOUND, NONE, "valid C2PA manifest, no AI generation declared",
                   "유효한 C2PA 매니페스트가 있으나 AI 생성 선언은 없습니다", **details)


def _c2pa_source_types(manifest: dict) -> list[str]:
    """digitalSourceType values anywhere in a manifest (actions v1/v2, IPTC assertions …)."""
    found: list[str] = []
    stack: list[Any] = [manifest]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).lower().endswith("digitalsourcetype") and isinstance(value, str):
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _claim_generator(manifest: dict) -> str | None:
    if isinstance(manifest.get("claim_generator"), str):
        return manifest["claim_generator"]
    infos = manifest.get("claim_generator_info") or []
    names = [f"{i.get('name', '')} {i.get('version', '')}".strip() for i in infos if isinstance(i, dict)]
    return "; ".join(names) or None


def _iptc_code(value: str) -> str:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` → the last part."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------
# IPTC DigitalSourceType in XMP
# --------------------------------------------------------------------------------------------


def _check_source_type(meta: _Metadata) -> Signal:
    codes = sorted({_iptc_code(v) for v in meta.xmp_source_types if v})
    details = {"digital_source_types": codes}
    if ai := sorted(set(codes) & _IPTC_AI):
        return _signal("xmp_source_type", FOUND, STRONG_AI, f"XMP declares AI generation ({ai[0]})",
                       f"XMP에 AI 생성이 선언되어 있습니다({ai[0]})", **details)
    if synthetic := sorted(set(codes) & _IPTC_SYNTHETIC):
        return _signal("xmp_source_type", FOUND, WEAK_AI, f"XMP declares synthetic media ({synthetic[0]})",
                       f"XMP에 합성 이미지로 표시되어 있습니다({synthetic[0]})", **details)
    if camera := sorted(set(codes) & _IPTC_CAMERA):
        return _signal("xmp_source_type", FOUND, WEAK_CAMERA, f"XMP declares a camera capture ({camera[0]})",
                       f"XMP에 카메라 촬영으로 표시되어 있습니다({camera[0]})", **details)
    if codes:
        return _signal("xmp_source_type", FOUND, NONE, f"XMP digital source type: {codes[0]}",
                       f"XMP 디지털 소스 유형: {codes[0]}", **details)
    if "xmp" in meta.errors:
        return _signal("xmp_source_type", ERROR, NONE, f"XMP could not be read: {meta.errors['xmp']}",
                       "XMP를 읽을 수 없습니다", error=meta.errors["xmp"])
    return _signal("xmp_source_type", NOT_FOUND, NONE, "no IPTC digital source type in XMP",
                   "XMP에 디지털 소스 유형 없음")


# --------------------------------------------------------------------------------------------
# Generator metadata
# --------------------------------------------------------------------------------------------

# Names as generators and their front-ends write them. Patterns are tight where the word is
# common elsewhere (Spanish "imagen", the painter Kandinsky, "flux", "firefly").
_GENERATOR_NAMES: tuple[tuple[str, str], ...] = (
    ("Stable Diffusion", r"stable[\s_-]?diffusion|\bSDXL\b|\bsd_xl_|\bSD ?3(?:\.5)?\b"),
    ("Midjourney", r"midjourney"),
    ("DALL·E", r"\bdall[\W_]?e(?:[\s-]?[23])?\b"),  # EXIF ASCII turns "·" into "?"
    ("Adobe Firefly", r"adobe firefly|\bfirefly image \d"),
    ("Google Imagen", r"google imagen|\bimagen-\d"),
    ("FLUX", r"\bflux(?:\.1|\.2|1|2)\b|black[\s-]?forest[\s-]?labs"),
    ("ComfyUI", r"comfyui"),
    ("NovelAI", r"\bnovel\s?ai\b"),
    ("AUTOMATIC1111", r"automatic1111|stable-diffusion-webui"),
    ("InvokeAI", r"\binvoke\s?ai\b"),
    ("Fooocus", r"fooocus"),
    ("Leonardo.Ai", r"leonardo\.ai"),
    ("Ideogram", r"\bideogram\b"),
    ("DreamStudio", r"dreamstudio"),
    ("NightCafe", r"nightcafe"),
    ("Craiyon", r"craiyon"),
    ("Kandinsky", r"kandinsky[\s-]?[23]"),
    ("OpenAI image model", r"\bgpt-image|\bchatgpt\b|\bopenai\b"),
    ("Gemini image model", r"nano[\s-]?banana|gemini[\w.\s-]{0,12}image"),
    ("Seedream", r"seedream"),
    ("Qwen-Image", r"qwen[\s-]?image"),
    ("HiDream", r"hidream"),
    ("Draw Things", r"draw things"),
    ("Bing Image Creator", r"bing image creator"),
)
_GENERATOR_RE = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _GENERATOR_NAMES]
# AUTOMATIC1111 / Forge / Fooocus (A1111 mode) write "…\nSteps: 20, Sampler: Euler a, CFG scale: 7…".
_A1111_RE = re.compile(r"\bSteps: ?\d+, ?Sampler: ")
_INVOKEAI_KEYS = frozenset({"invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"})
_EXIF_TEXT_FIELDS = ("Software", "ImageDescription", "UserComment", "Make", "Model", "Artist")
_SCAN_CHARS = 65536  # a generator name appears near the start; workflows can be megabytes


def _check_generator(meta: _Metadata) -> Signal:
    findings = list(_generator_findings(meta))
    if findings:
        first = findings[0]
        return _signal("generator_metadata", FOUND, STRONG_AI,
                       f"{first['field']} names a generator ({first['generator']})",
                       f"메타데이터({first['field']})에 생성 도구가 기록되어 있습니다({first['generator']})",
                       generator=first["generator"], findings=findings[:10])
    broken = {k: v for k, v in meta.errors.items() if k in ("text", "exif")}
    if broken:
        return _signal("generator_metadata", ERROR, NONE, "metadata could not be read fully",
                       "메타데이터를 모두 읽지 못했습니다", errors=broken)
    return _signal("generator_metadata", NOT_FOUND, NONE, "no generator named in the metadata",
                   "메타데이터에 생성 도구 기록 없음")


def _generator_findings(meta: _Metadata) -> Iterator[dict]:
    for key, value in meta.text.items():
        generator = _text_chunk_generator(key, value) or _named_generator(value)
        if generator:
            yield _finding(f"PNG text '{key}'", generator, value)
    for key in _EXIF_TEXT_FIELDS:
        value = meta.exif.get(key)
        generator = _named_generator(value) if isinstance(value, str) else None
        if generator:
            yield _finding(f"EXIF {key}", generator, value)
    for value in meta.xmp_creator_tools:
        if generator := _named_generator(value):
            yield _finding("XMP CreatorTool", generator, value)


def _finding(where: str, generator: str, value: str) -> dict:
    return {"field": where, "generator": generator, "excerpt": value[:_MAX_TEXT]}


def _text_chunk_generator(key: str, value: str) -> str | None:
    """Recognise the text chunks generator front-ends write, by their key and their shape."""
    if key in _INVOKEAI_KEYS:
        return "InvokeAI"
    if key == "parameters":
        if _A1111_RE.search(value[:_SCAN_CHARS]):
            return "AUTOMATIC1111-style Stable Diffusion"
        parsed = _json_object(value)
        if parsed and {"prompt", "steps", "sampler", "seed", "sui_image_params"} & {k.lower() for k in parsed}:
            return "Stable Diffusion front-end (JSON parameters)"
    if key == "prompt" and _is_comfy_prompt(_json_object(value)):
        return "ComfyUI"
    if key == "workflow" and isinstance((_json_object(value) or {}).get("nodes"), list):
        return "ComfyUI"
    return None


def _is_comfy_prompt(parsed: dict | None) -> bool:
    # ComfyUI's API prompt: {"3": {"class_type": "KSampler", "inputs": {…}}, …}
    return bool(parsed) and any(isinstance(node, dict) and "class_type" in node for node in parsed.values())


def _json_object(text: str) -> dict | None:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _named_generator(text: str) -> str | None:
    head = text[:_SCAN_CHARS]
    if _A1111_RE.search(head):
        return "AUTOMATIC1111-style Stable Diffusion"
    return next((name for name, pattern in _GENERATOR_RE if pattern.search(head)), None)


# --------------------------------------------------------------------------------------------
# Stable Diffusion invisible watermark
# --------------------------------------------------------------------------------------------

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
# The decoder loops in Python over 4×4 blocks; a slab of full-width rows from the top keeps the
# block-to-bit assignment of the whole image (bits are assigned row by row) at a bounded cost.
_WATERMARK_PIXEL_BUDGET = 1024 * 1024


@functools.lru_cache(maxsize=1)
def _embed_max_dct() -> type:
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


def _check_watermark(data: bytes, decoded: DecodedImage | None = None) -> Signal:
    try:
        decoder = _embed_max_dct()
    except ModuleNotFoundError as error:  # an optional dependency: its absence is not a failed check
        return _signal("sd_watermark", UNAVAILABLE, NONE, f"watermark check unavailable: {error.name} is not installed "
                       f"({WATERMARK_INSTALL})", "워터마크 검사 모듈이 설치되지 않아 확인하지 못했습니다",
                       checked=False, missing=error.name)
    try:
        pixels = (decoded or open_image(data)).pixels
    except ImageDecodeError as error:
        return _signal("sd_watermark", ERROR, NONE, f"pixels could not be decoded: {error.message}",
                       "픽셀을 읽을 수 없어 워터마크를 확인하지 못했습니다", code=error.code)
    height, width = pixels.shape[:2]
    if height * width < _WATERMARK_MIN_PIXELS:
        return _signal("sd_watermark", NOT_FOUND, NONE, "image too small to carry the SD watermark",
                       "이미지가 작아 Stable Diffusion 워터마크를 담을 수 없습니다", checked=False)
    rows = max(8, min(height, _WATERMARK_PIXEL_BUDGET // width) // 8 * 8)
    bgr = np.ascontiguousarray(pixels[:rows, :, ::-1])  # the encoder works on OpenCV's BGR order
    bit_errors: dict[str, int] = {}
    for model, expected, tolerance in _MARKS:
        bits = np.asarray(decoder(watermarks=[], wmLen=expected.size).decode(bgr), dtype=np.uint8)
        bit_errors[model] = errors = int(np.count_nonzero(bits != expected))
        if errors <= tolerance:
            return _signal("sd_watermark", FOUND, STRONG_AI, f"{model} invisible watermark decoded",
                           f"{model} 비가시성 워터마크가 검출되었습니다",
                           model=model, bit_errors=errors, bits=int(expected.size), rows_checked=rows)
    return _signal("sd_watermark", NOT_FOUND, NONE,
                   "no Stable Diffusion watermark (it does not survive JPEG or resizing: absence means nothing)",
                   "Stable Diffusion 워터마크 없음(JPEG 저장·크기 변경 시 사라지므로 실제 사진의 증거가 아님)",
                   checked=True, rows_checked=rows, bit_errors=bit_errors)


def _watermark_skipped() -> Signal:
    return _signal("sd_watermark", NOT_FOUND, NONE, "watermark check skipped",
                   "워터마크 확인을 건너뛰었습니다", checked=False)


# --------------------------------------------------------------------------------------------
# Camera EXIF
# --------------------------------------------------------------------------------------------

_CAPTURE_FIELDS = ("ExposureTime", "FNumber", "ISOSpeedRatings", "DateTimeOriginal")


def _check_camera(meta: _Metadata) -> Signal:
    camera = {k: meta.exif[k] for k in ("Make", "Model", "LensModel") if k in meta.exif}
    capture = {k: meta.exif[k] for k in _CAPTURE_FIELDS if k in meta.exif}
    names_generator = any(_named_generator(str(v)) for v in camera.values())
    if camera and capture and not names_generator:
        device = _device_name(str(camera.get("Make", "")), str(camera.get("Model", "")))
        return _signal("camera_exif", FOUND, WEAK_CAMERA,
                       f"camera EXIF ({device}); weak evidence: EXIF is easy to forge",
                       f"카메라 EXIF({device}) 있음 — EXIF는 쉽게 위조할 수 있어 약한 증거입니다",
                       **camera, **capture)
    if "exif" in meta.errors:
        return _signal("camera_exif", ERROR, NONE, f"EXIF could not be read: {meta.errors['exif']}",
                       "EXIF를 읽을 수 없습니다", error=meta.errors["exif"])
    return _signal("camera_exif", NOT_FOUND, NONE, "no camera EXIF", "카메라 EXIF 없음",
                   fields_present=sorted(meta.exif))


def _device_name(make: str, model: str) -> str:
    # Many cameras repeat the maker in the model ("Canon" + "Canon EOS 5D"): show it once.
    if make and model.lower().startswith(make.lower()):
        return model
    return f"{make} {model}".strip() or "unknown camera"


# --------------------------------------------------------------------------------------------
# The combination rule
# --------------------------------------------------------------------------------------------

def combine_verdict(pixel_verdict: str | None, pixel_score: float | None,
                    report: ProvenanceReport) -> tuple[str, str, str]:
    """Combine the pixel model's verdict with the provenance report by the stated rule.

    Returns ``(final_verdict, rule_en, rule_ko)``: the verdict (``ai``, ``real`` or
    ``inconclusive``) and the sentence of the rule that decided it, for display. See
    :data:`RULE_EN` for the whole rule.
    """
    _check_pixel_inputs(pixel_verdict, pixel_score)
    declared = [s for s in report.signals if s.strength == STRONG_AI]
    if declared:
        en = ", ".join(SIGNAL_LABELS.get(s.name, (s.name, s.name))[0] for s in declared)
        ko = ", ".join(SIGNAL_LABELS.get(s.name, (s.name, s.name))[1] for s in declared)
        return ("ai",
                f"The file itself declares it was generated ({en}); this decides the verdict AI "
                "regardless of the pixel analysis.",
                f"파일 자체에 AI로 생성되었다는 표시가 있습니다({ko}). 픽셀 분석 결과와 관계없이 AI 생성으로 "
                "판정합니다.")
    verdict, en, ko = _pixel_rule(pixel_verdict, pixel_score)
    notes = list(_context_notes(report))
    return verdict, " ".join([en, *(n[0] for n in notes)]), " ".join([ko, *(n[1] for n in notes)])


def _check_pixel_inputs(pixel_verdict: str | None, pixel_score: float | None) -> None:
    if pixel_verdict is not None and pixel_verdict not in VERDICTS:
        raise ValueError(f"pixel_verdict must be one of {VERDICTS} or None, not {pixel_verdict!r}")
    if pixel_score is not None and not (isinstance(pixel_score, numbers.Real) and 0.0 <= pixel_score <= 1.0):
        raise ValueError(f"pixel_score must be a probability in [0, 1] or None, not {pixel_score!r}")


def _pixel_rule(pixel_verdict: str | None, pixel_score: float | None) -> tuple[str, str, str]:
    if pixel_verdict is None:
        return ("inconclusive",
                "No pixel verdict and no declaration of AI generation in the file: inconclusive.",
                "픽셀 분석 결과가 없고 파일에 AI 생성 표시도 없어 판단을 보류합니다.")
    score = "" if pixel_score is None else f", score {float(pixel_score):.2f}"
    score_ko = "" if pixel_score is None else f", 점수 {float(pixel_score):.2f}"
    return (pixel_verdict,
            f"The file does not declare AI generation, so the pixel verdict stands ({pixel_verdict}{score}).",
            f"파일에 AI 생성 표시가 없어 픽셀 분석 결과를 따릅니다({VERDICT_TEXTS[pixel_verdict].label_ko}{score_ko}).")


def _context_notes(report: ProvenanceReport) -> Iterator[tuple[str, str]]:
    """Sentences for evidence that is shown but, by the rule, changes nothing."""
    if any(s.name == "c2pa" and s.status == INVALID for s in report.signals):
        yield ("An invalid C2PA manifest was found; it is shown but does not change the verdict on its own.",
               "유효하지 않은 C2PA 매니페스트가 있습니다. 표시만 하며 그것만으로 판정을 바꾸지 않습니다.")
    if any(s.strength == WEAK_AI for s in report.signals if s.name != "c2pa"):
        yield ("Weak hints of synthetic origin are shown as context only.",
               "합성 이미지라는 약한 단서는 참고로만 표시합니다.")
    if any(s.strength == WEAK_CAMERA for s in report.signals):
        yield ("Camera metadata is shown as context only: it is easy to forge and never changes the verdict.",
               "카메라 메타데이터는 쉽게 위조할 수 있어 참고로만 표시하며 판정을 바꾸지 않습니다.")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    message = str(error).strip() or type(error).__name__
    return message[:_MAX_TEXT]
