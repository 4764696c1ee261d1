"""The message catalogue (aiornot.contract.messages): both languages for every entry, the same placeholders."""

from __future__ import annotations

import pytest

from aiornot.contract import messages


def test_every_entry_has_both_languages_with_the_same_placeholders():
    entries = messages.catalogue()
    assert entries, "the catalogue is empty"
    for key, entry in entries.items():
        assert entry.en.strip() and entry.ko.strip(), key
        assert messages.placeholders(entry.en) == messages.placeholders(entry.ko), key


def test_a_message_is_filled_in_both_languages_and_an_unknown_key_is_named():
    entry = messages.Message(en="{count} photos", ko="사진 {count}장").format(count=3)
    assert (entry.en, entry["ko"]) == ("3 photos", "사진 3장")
    with pytest.raises(messages.UnknownMessage, match="no.such.key"):
        messages.message("no.such.key")
    with pytest.raises(KeyError, match="unknown language"):
        messages.text("verdict.ai.label", "fr")
