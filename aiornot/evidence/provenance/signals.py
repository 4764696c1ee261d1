"""What a provenance check reports: a named :class:`Signal`, and the :class:`ProvenanceReport` of one file.

Each signal has a status (``found``, ``not_found``, ``invalid``, ``error``, or ``unavailable`` when the
check's optional dependency is not installed) and a strength (``strong_ai``, ``weak_ai``,
``weak_camera``, ``none``). Its summary is one catalogue sentence (``[provenance.*]`` in
``aiornot/contract/messages.toml``) in English and Korean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aiornot.contract.jsonsafe import json_safe
from aiornot.evidence.wording import Message, message

FOUND, NOT_FOUND, INVALID, ERROR, UNAVAILABLE = "found", "not_found", "invalid", "error", "unavailable"
STRONG_AI, WEAK_AI, WEAK_CAMERA, NONE = "strong_ai", "weak_ai", "weak_camera", "none"
STATUSES = (FOUND, NOT_FOUND, INVALID, ERROR, UNAVAILABLE)
#: Strongest first: AI evidence outranks camera evidence, because camera EXIF is trivially forged.
STRENGTHS = (STRONG_AI, WEAK_AI, WEAK_CAMERA, NONE)

#: Signal names in report order, with the labels the rule's sentences use (``.en``, ``.ko``).
SIGNAL_LABELS: dict[str, Message] = {
    name: message(f"provenance.label.{name}")
    for name in ("c2pa", "xmp_source_type", "generator_metadata", "sd_watermark", "camera_exif")
}

MAX_TEXT = 300  # characters of any metadata value kept in `details` (prompts can be pages long)


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
        object.__setattr__(self, "details", json_safe(dict(self.details), finite=True, max_text=MAX_TEXT, max_items=50,
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


def make_signal(name: str, status: str, strength: str, summary: Message, **details: Any) -> Signal:
    """A signal whose summary is a catalogue sentence (``summary.en``, ``summary.ko``)."""
    return Signal(name, status, strength, summary.en, summary.ko, details)


def describe(error: BaseException) -> str:
    """An exception as a short line for a signal (its message, or its type when it has none)."""
    text = str(error).strip() or type(error).__name__
    return text[:MAX_TEXT]
