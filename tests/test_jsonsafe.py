"""The one JSON converter, under its two policies: the model config's and provenance's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import TiffImagePlugin

from aiornot.contract.jsonsafe import json_safe

PROVENANCE = dict(finite=True, max_text=5, max_items=3, max_depth=2, strict=False)


def test_config_policy_keeps_nan_converts_numpy_and_refuses_unknown_types():
    value = {"auc": np.float32(0.5), "n": np.int64(7), "ok": np.bool_(True), "nan": float("nan"),
             "curve": np.array([[1, 2], [3, 4]]), "dir": Path("models/default"), "text": "x" * 1000, "pair": (1, 2)}
    safe = json_safe(value)
    assert safe["auc"] == 0.5 and type(safe["auc"]) is float
    assert safe["n"] == 7 and type(safe["n"]) is int and safe["ok"] is True
    assert math.isnan(safe["nan"])  # a measured NaN stays NaN in detector.json
    assert safe["curve"] == [[1, 2], [3, 4]] and safe["dir"] == "models/default"
    assert safe["text"] == "x" * 1000 and safe["pair"] == [1, 2]  # nothing is cut
    assert "NaN" in json.dumps(safe)
    with pytest.raises(TypeError, match="not JSON-serialisable: object"):
        json_safe({"bad": object()})


def test_provenance_policy_drops_non_finite_cuts_and_stringifies():
    deep = {"a": {"b": {"c": {"d": 1}}}}
    safe = json_safe({"nan": float("nan"), "inf": np.float64("inf"), "ratio": TiffImagePlugin.IFDRational(1, 4),
                      "raw": b"\xffabcdefgh", "long": "abcdefghij", "many": list(range(10)), "deep": deep,
                      "thing": object()}, **PROVENANCE)
    assert safe["nan"] is None and safe["inf"] is None and safe["ratio"] == 0.25
    assert safe["raw"] == "\ufffdabcd" and safe["long"] == "abcde" and safe["many"] == [0, 1, 2]
    assert safe["deep"] == {"a": {"b": "{'c':"}}  # below max_depth: the cut str()
    assert safe["thing"] == "<obje"
    json.dumps(safe, allow_nan=False)  # strictly valid JSON
