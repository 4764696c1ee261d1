"""The web page: ``static/index.html`` with the catalogue's ``[page]`` words written in.

The page's words live in :mod:`aiornot.contract.messages` like every other sentence. The server fills
each ``{{name}}`` of the template with its Korean text (the page's default language, readable before any
script runs) and ``{{strings}}`` with both languages as JSON, from which ``app.js`` switches language
without asking the server again — the page keeps working offline once loaded.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path

from aiornot.contract.messages import LANGUAGES, catalogue

TEMPLATE = Path(__file__).resolve().parent / "static" / "index.html"
PREFIX = "page."
DEFAULT_LANGUAGE = "ko"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def page_strings() -> dict[str, dict[str, str]]:
    """Language → the page's words by name (the keys of the catalogue's ``[page]`` table)."""
    entries = {key.removeprefix(PREFIX): entry for key, entry in catalogue().items() if key.startswith(PREFIX)}
    return {language: {name: entry[language] for name, entry in entries.items()} for language in LANGUAGES}


@lru_cache(maxsize=1)
def index_html() -> str:
    """The page as served (built once: the template and the catalogue do not change while the server runs)."""
    strings = page_strings()
    # Inside <script>, only "<" could end the element early: \u003c is the same character to JSON.parse.
    strings_json = json.dumps(strings, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        return strings_json if name == "strings" else html.escape(strings[DEFAULT_LANGUAGE][name])

    return _PLACEHOLDER.sub(fill, TEMPLATE.read_text(encoding="utf-8"))
