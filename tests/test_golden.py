"""Golden scores: the committed model must give the fixed images exactly the scores stored beside them.

A changed decoder, tile policy, encoder, head, calibration, fusion rule or threshold moves at least
one of these numbers. After retraining on purpose, `make goldens` rewrites them (same commit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
TOLERANCE = 2e-4  # far below any real change; above float noise between identical runs


@pytest.fixture(scope="module")
def measured() -> dict:
    sys.path.insert(0, str(GOLDEN))
    from update import golden_scores

    return golden_scores()


def assert_same(got: dict, expected: dict, name: str) -> None:
    assert got["score"] == pytest.approx(expected["score"], abs=TOLERANCE), name
    assert got["verdict"] == expected["verdict"], name
    assert got.get("pixel_verdict") == expected.get("pixel_verdict"), name
    assert set(got["experts"]) == set(expected["experts"]), name
    for expert, value in expected["experts"].items():
        assert got["experts"][expert] == pytest.approx(value, abs=TOLERANCE), (name, expert)
    assert ("face_score" in got) == ("face_score" in expected), name
    if "face_score" in expected:
        assert got["face_score"] == pytest.approx(expected["face_score"], abs=TOLERANCE), name


@pytest.mark.slow
def test_every_golden_image_keeps_its_score_and_verdict(measured):
    stored = json.loads((GOLDEN / "scores.json").read_text())
    assert measured["model"] == stored["model"], "the default model changed: run `make goldens` in the same commit"
    assert measured["runtime"] == stored["runtime"], "scored on another runtime (TFLite or Keras) than the goldens"
    assert set(measured["images"]) == set(stored["images"])
    for name, expected in stored["images"].items():
        assert_same(measured["images"][name], expected, name)


@pytest.mark.slow
def test_the_whole_path_an_office_runs_keeps_its_scores(measured):
    """ID-photo mode and provenance on (the face score asked for): the face score and the final verdict are pinned too."""
    stored = json.loads((GOLDEN / "scores.json").read_text())
    assert set(measured["modes"]) == set(stored["modes"]) and stored["modes"]
    for name, expected in stored["modes"].items():
        assert_same(measured["modes"][name], expected, name)
    assert any("face_score" in entry for entry in stored["modes"].values())


def test_the_goldens_are_not_all_one_verdict():
    """A guard on the goldens themselves: with one verdict only, a flipped calibration could hide."""
    stored = json.loads((GOLDEN / "scores.json").read_text())
    scores = [entry["score"] for entry in stored["images"].values()]
    assert max(scores) - min(scores) > 0.2
