"""One catalogue of the words people read, in English and Korean (the officers read Korean first).

Every sentence a person reads — the page, the API's error bodies, the provenance signals, the ID-photo
checks, the model card's Korean summary — comes from ``messages.toml`` beside this module, one entry per
key with an ``en`` and a ``ko`` text. Code names a key; it never holds the sentence. A translator edits one
file, and a test checks that each entry has both languages with the same ``{placeholders}`` — save those
an entry names in ``en_only``: a technical detail (a decoder's reason, a count) the Korean leaves out.

>>> message("verdict.real.label").ko
'실제 사진'
>>> text("verdict.real.label", "en")
'Real photo'
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).with_name("messages.toml")
LANGUAGES = ("en", "ko")


class UnknownMessage(KeyError):
    """A key the catalogue does not have: a programming error, named so it is found at once."""


@dataclass(frozen=True)
class Message:
    """One sentence in both languages. ``format`` fills the same placeholders in each (``en_only``: the English's alone)."""

    en: str
    ko: str
    en_only: tuple[str, ...] = ()

    def format(self, **fields: Any) -> "Message":
        return Message(self.en.format(**fields), self.ko.format(**fields), self.en_only)

    def __getitem__(self, language: str) -> str:
        if language not in LANGUAGES:
            raise KeyError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
        return getattr(self, language)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Message]:
    """Every entry of ``messages.toml``, by its dotted key (``[verdict.ai] label = {…}`` → ``verdict.ai.label``)."""
    with CATALOGUE_FILE.open("rb") as handle:
        tree = tomllib.load(handle)
    entries: dict[str, Message] = {}
    _collect(tree, "", entries)
    return entries


def _collect(node: dict[str, Any], prefix: str, entries: dict[str, Message]) -> None:
    for name, value in node.items():
        key = f"{prefix}{name}"
        if _is_entry(value):
            entries[key] = Message(en=value["en"], ko=value["ko"], en_only=tuple(value.get("en_only", ())))
        elif isinstance(value, dict):
            _collect(value, f"{key}.", entries)
        else:
            raise ValueError(f"{CATALOGUE_FILE.name}: {key} is neither an entry with en and ko nor a table of entries")


def _is_entry(value: Any) -> bool:
    """An ``{en, ko}`` table of two strings, with perhaps an ``en_only`` list of placeholder names."""
    if not isinstance(value, dict) or not set(LANGUAGES) <= set(value) <= {*LANGUAGES, "en_only"}:
        return False
    en_only = value.get("en_only", [])
    return all(isinstance(value[language], str) for language in LANGUAGES) and isinstance(en_only, list) \
        and all(isinstance(name, str) for name in en_only)


def message(key: str, **fields: Any) -> Message:
    """The entry ``key`` in both languages, with ``fields`` filled in."""
    try:
        entry = catalogue()[key]
    except KeyError:
        raise UnknownMessage(f"no message {key!r} in {CATALOGUE_FILE.name}") from None
    return entry.format(**fields) if fields else entry


def text(key: str, language: str = "en", **fields: Any) -> str:
    """The entry ``key`` in one language."""
    return message(key, **fields)[language]


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template fills (a test compares them between the languages)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
