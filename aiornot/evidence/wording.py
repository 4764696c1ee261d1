"""The evidence modules' sentences, read from the message catalogue (:mod:`aiornot.contract.messages`).

The provenance signals and the ID-photo checks speak English and Korean. Most sentences fill the same
numbers into both languages; a few fill in words that are themselves translated (a verdict's label, a
side of the photo, a list of signal names). :func:`bilingual` takes such a word as a
:class:`~aiornot.contract.messages.Message` and gives each language its own.
"""

from __future__ import annotations

from typing import Any

from aiornot.contract.messages import LANGUAGES, Message, message, text

__all__ = ["Message", "bilingual", "message", "with_english_detail"]


def bilingual(key: str, **fields: Any) -> Message:
    """The entry ``key`` filled in each language; a field given as a :class:`Message` fills each in its own words."""
    def filled(language: str) -> str:
        own = {name: value[language] if isinstance(value, Message) else value for name, value in fields.items()}
        return text(key, language, **own)

    return Message(**{language: filled(language) for language in LANGUAGES})


def with_english_detail(words: Message, detail: str) -> Message:
    """``words`` with a technical detail (a library's error, an install command, failure codes) added to the
    English only: the Korean sentence is written for an officer and leaves such details out."""
    return Message(words.en + detail, words.ko)
