"""The message catalogue (aiornot.contract.messages): both languages for every entry, the same placeholders,
and no Korean sentence left in the package's code."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

import aiornot
from aiornot.contract import messages

PACKAGE = Path(aiornot.__file__).parent
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def test_every_entry_has_both_languages_with_the_same_placeholders():
    entries = messages.catalogue()
    assert entries, "the catalogue is empty"
    for key, entry in entries.items():
        assert entry.en.strip() and entry.ko.strip(), key
        english = messages.placeholders(entry.en)
        assert set(entry.en_only) <= english, f"{key}: en_only names a placeholder the English does not have"
        assert english == messages.placeholders(entry.ko) | set(entry.en_only), key


def test_a_message_is_filled_in_both_languages_and_an_unknown_key_is_named():
    entry = messages.Message(en="{count} photos", ko="사진 {count}장").format(count=3)
    assert (entry.en, entry["ko"]) == ("3 photos", "사진 3장")
    with pytest.raises(messages.UnknownMessage, match="no.such.key"):
        messages.message("no.such.key")
    with pytest.raises(KeyError, match="unknown language"):
        messages.text("verdict.ai.label", "fr")


def test_an_english_only_detail_is_filled_in_english_alone():
    entry = messages.message("service.error.upload_too_slow", why="no bytes for 10 s")
    assert "no bytes for 10 s" in entry.en and "{" not in entry.ko


def _korean_literals(path: Path) -> list[str]:
    """``line: text`` of each string literal holding Hangul, docstrings left out (they document, nobody reads them in the app)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [f"{node.lineno}: {node.value[:60]}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and HANGUL.search(node.value)]


def _modules() -> dict[str, Path]:
    return {path.relative_to(PACKAGE).as_posix(): path for path in sorted(PACKAGE.rglob("*.py"))
            if not fnmatch(path.relative_to(PACKAGE).as_posix(), "contract/messages*")}


def test_no_module_holds_a_korean_sentence_outside_the_catalogue():
    found = {name: lines for name, path in _modules().items() if (lines := _korean_literals(path))}
    assert not found, f"Korean in code: move it into aiornot/contract/messages.toml and name its key: {found}"


def test_the_guard_sees_a_korean_literal_and_passes_over_a_docstring(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text('"""증명사진 — a docstring."""\nLABEL = "실제 사진"\n', encoding="utf-8")
    assert _korean_literals(module) == ["2: 실제 사진"]
