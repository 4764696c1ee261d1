"""The ``c2pa`` signal: a C2PA manifest (read with c2pa-python) — valid or not, and what it declares.

A valid manifest whose actions or assertions declare an AI ``digitalSourceType`` is ``strong_ai``;
the signer need not be on a trust list, because a file that declares itself generated gives a
forger nothing. A manifest that fails verification is ``invalid`` (``weak_ai`` when it declares AI
generation): shown, but by the rule it changes no verdict on its own.
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any

from aiornot.evidence.provenance import iptc
from aiornot.evidence.provenance.signals import (ERROR, FOUND, INVALID, NONE, NOT_FOUND, STRONG_AI, WEAK_AI,
                                                 WEAK_CAMERA, Signal, describe, make_signal)
from aiornot.evidence.wording import message, with_english_detail

_C2PA_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
              "TIFF": "image/tiff", "GIF": "image/gif", "AVIF": "image/avif"}


@functools.lru_cache(maxsize=1)
def _c2pa_context() -> Any:
    # Imported lazily: loading the native library is not needed to import aiornot. Reading must
    # never reach the network (offline machines would hang, and a remote manifest or OCSP answer
    # is not something an ID-photo officer can reproduce), so both fetches are switched off.
    import c2pa

    return c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})


def check_c2pa(data: bytes, image_format: str) -> Signal:
    """The ``c2pa`` signal of a file's bytes (``image_format`` as Pillow names it)."""
    import c2pa

    mime = _C2PA_MIME.get(image_format)
    if mime is None:
        words = with_english_detail(message("provenance.c2pa.not_found"),
                                    f" (C2PA is not defined for {image_format})")
        return make_signal("c2pa", NOT_FOUND, NONE, words, format=image_format)
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=_c2pa_context())
    except c2pa.C2paError as error:
        return _c2pa_unreadable(data, error)
    if reader is None:
        return make_signal("c2pa", NOT_FOUND, NONE, message("provenance.c2pa.not_found"))
    with reader:
        store = json.loads(reader.json())
    return _c2pa_signal(store)


def _c2pa_unreadable(data: bytes, error: Exception) -> Signal:
    # A JUMBF box labelled c2pa means a manifest is there but broken (truncated, edited by a tool
    # that did not understand it): that is an invalid manifest, not a missing one.
    if b"jumb" in data and b"c2pa" in data:
        return make_signal("c2pa", INVALID, NONE, message("provenance.c2pa.unreadable"), error=describe(error))
    words = with_english_detail(message("provenance.c2pa.failed"), f": {describe(error)}")
    return make_signal("c2pa", ERROR, NONE, words, error=describe(error))


def _c2pa_signal(store: dict) -> Signal:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest"), {})
    source_types = sorted({iptc.iptc_code(v) for m in manifests.values() for v in _c2pa_source_types(m)})
    failures = [s.get("code") for s in store.get("validation_status") or []
                if isinstance(s, dict) and s.get("code") != "signingCredential.untrusted"]
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    valid = state in ("Valid", "Trusted")
    details = {"valid": valid, "trusted": state == "Trusted", "validation_state": state,
               "claim_generator": _claim_generator(active), "digital_source_types": source_types,
               "failures": failures, "signer": (active.get("signature_info") or {}).get("issuer")}
    declared_ai = sorted(set(source_types) & iptc.AI_GENERATED)
    if not valid:
        strength = WEAK_AI if declared_ai else NONE
        words = with_english_detail(message("provenance.c2pa.invalid"), f" ({', '.join(failures) or state})")
        return make_signal("c2pa", INVALID, strength, words, **details)
    if declared_ai:
        return make_signal("c2pa", FOUND, STRONG_AI, message("provenance.c2pa.declares_ai", code=declared_ai[0]),
                           **details)
    if set(source_types) & iptc.CAMERA:
        return make_signal("c2pa", FOUND, WEAK_CAMERA, message("provenance.c2pa.declares_camera"), **details)
    return make_signal("c2pa", FOUND, NONE, message("provenance.c2pa.declares_nothing"), **details)


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
