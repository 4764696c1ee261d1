"""The ``generator_metadata`` signal: metadata written by an image generator or its front-end.

PNG text chunks of AUTOMATIC1111 (``parameters``), ComfyUI (``prompt``, ``workflow``), InvokeAI …,
and EXIF Software / ImageDescription / UserComment or XMP CreatorTool naming a known generator
(Stable Diffusion, Midjourney, DALL·E …). Any of them is ``strong_ai``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from aiornot.evidence.provenance.metadata import Metadata
from aiornot.evidence.provenance.signals import (ERROR, FOUND, MAX_TEXT, NONE, NOT_FOUND, STRONG_AI, Signal,
                                                 make_signal)
from aiornot.evidence.wording import message

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


def check_generator(meta: Metadata) -> Signal:
    """The ``generator_metadata`` signal of a file's metadata."""
    findings = list(_generator_findings(meta))
    if findings:
        first = findings[0]
        words = message("provenance.generator.found", field=first["field"], generator=first["generator"])
        return make_signal("generator_metadata", FOUND, STRONG_AI, words,
                           generator=first["generator"], findings=findings[:10])
    broken = {k: v for k, v in meta.errors.items() if k in ("text", "exif")}
    if broken:
        return make_signal("generator_metadata", ERROR, NONE, message("provenance.generator.unreadable"),
                           errors=broken)
    return make_signal("generator_metadata", NOT_FOUND, NONE, message("provenance.generator.not_found"))


def _generator_findings(meta: Metadata) -> Iterator[dict]:
    for key, value in meta.text.items():
        generator = _text_chunk_generator(key, value) or named_generator(value)
        if generator:
            yield _finding(f"PNG text '{key}'", generator, value)
    for key in _EXIF_TEXT_FIELDS:
        value = meta.exif.get(key)
        generator = named_generator(value) if isinstance(value, str) else None
        if generator:
            yield _finding(f"EXIF {key}", generator, value)
    for value in meta.xmp_creator_tools:
        if generator := named_generator(value):
            yield _finding("XMP CreatorTool", generator, value)


def _finding(where: str, generator: str, value: str) -> dict:
    return {"field": where, "generator": generator, "excerpt": value[:MAX_TEXT]}


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


def named_generator(text: str) -> str | None:
    """The generator a piece of metadata text names, or None."""
    head = text[:_SCAN_CHARS]
    if _A1111_RE.search(head):
        return "AUTOMATIC1111-style Stable Diffusion"
    return next((name for name, pattern in _GENERATOR_RE if pattern.search(head)), None)
