"""The typed, versioned detector.json (aiornot.contract.config): loading validates it and names a bad key.

That the model card reads only typed fields is tested in test_model_card.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aiornot.detector import CONFIG_NAME, MODEL_NAME, update_config
from aiornot.contract.config import SCHEMA_VERSION, ModelConfigError, load_config

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"


def test_the_committed_model_config_loads_with_its_schema_version() -> None:
    config, raw = load_config(DEFAULT / CONFIG_NAME)
    assert raw["schema_version"] == config.schema_version == SCHEMA_VERSION
    assert config.semantic is not None and config.fusion is not None and config.max_tiles == 64
    if config.evaluation is not None:  # notebook 03 measured this model: its summary counts its own rows
        assert config.evaluation.protocol.summary.folds == len([r for r in raw["evaluation"]["protocol"]["rows"] if r["view"] == "re-encoded"])
    else:  # not measured yet: the README must say so rather than quote another model's numbers
        readme = (DEFAULT.parents[1] / "README.md").read_text()
        assert "has not been evaluated yet" in readme.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0]
    assert config.thresholds.ai == raw["thresholds"]["ai"]


@pytest.mark.parametrize(("change", "named"), [
    ({"thresholds": {"ai": "high"}}, "thresholds.ai"),
    ({"tresholds": {"ai": 0.5}}, "unknown key 'tresholds'"),
    ({"evaluation": {"metrics": {"detector": {"ROC AUC": {"value": 0.9, "ci_lo": 0.8}}}}}, "evaluation.metrics.detector.ROC AUC.ci_lo"),
    ({"schema_version": 2}, "schema_version"),
    ({"training": {"seconds": 1.0}}, "missing key 'training.images_per_second'"),
])
def test_a_bad_key_is_refused_with_its_name(tmp_path: Path, change: dict, named: str) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "name": "m", **change}))
    with pytest.raises(ModelConfigError, match=named.replace(".", r"\.")) as raised:
        load_config(path)
    assert str(path) in str(raised.value)


def test_a_config_without_a_schema_version_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(json.dumps({"name": "m"}))
    with pytest.raises(ModelConfigError, match="no schema_version"):
        load_config(path)


def test_update_config_refuses_a_misspelt_section_and_leaves_the_file_alone(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(DEFAULT / CONFIG_NAME, model / CONFIG_NAME)
    (model / MODEL_NAME).write_bytes(b"")  # model_directory() only checks that the file is there
    before = (model / CONFIG_NAME).read_text()
    with pytest.raises(ModelConfigError, match="id_photo_case_study.portrait"):
        update_config(model, id_photo_case_study={"portrait": 3})
    assert (model / CONFIG_NAME).read_text() == before
    updated = update_config(model, id_photo_case_study={"portraits": 3, "real": 1, "ai": 2, "faces_found": 3})
    assert updated["id_photo_case_study"]["portraits"] == 3
    assert load_config(model / CONFIG_NAME)[0].id_photo_case_study.faces_found == 3


