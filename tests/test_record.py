"""What training produced, recorded in the typed config (aiornot.training.record): every field notebook 02 writes,
the architecture read from the detector, and the same keys as the committed model's detector.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiornot.detector import CONFIG_NAME, Detector
from aiornot.model import networks
from aiornot.model.experts import LinearHead, SemanticExpert
from aiornot.training import record, train

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"
CLIP_ID = "clip-vit-b16-float-1c3365a51414"
#: Sections notebooks 03 and 04 add after notebook 02 saved the model.
LATER_SECTIONS = {"evaluation", "id_photo_case_study"}
OUT_OF_SOURCE = {"expert_auc": {"semantic": 0.57, "forensic": 0.5}, "excluded": {}, "predictions": 40, "folds": 3}


def detector(*, semantic: str | None = CLIP_ID, out_of_source: bool = True, widths=None) -> Detector:
    """An untrained two-expert detector as ``train.fit_detector`` returns it (before it is saved)."""
    model = networks.forensic_detector(**({"widths": widths} if widths else {}))
    config = {"name": "aiornot-experts-v3", "crop_size": 64, "max_tiles": 64, **({"out_of_source": OUT_OF_SOURCE} if out_of_source else {})}
    made = Detector(model, config)
    if semantic:
        made.semantic = SemanticExpert(LinearHead(mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0, C=0.2), feature="blocks", encoder_id=semantic)
    return made


def run(model, seconds: float, images_per_second: float, best_epoch: int, epochs: int, name: str) -> train.TrainResult:
    history = pd.DataFrame({"val_auc": np.linspace(0.5, 0.9, epochs)})
    return train.TrainResult(model, history, train.TrainConfig(model=name), seconds, images_per_second, best_epoch)


def split() -> pd.DataFrame:
    """14 rows: train 3 real + 5 AI, validation 2 real + 1 AI, test 2 real + 1 AI."""
    return pd.DataFrame({
        "split": ["train"] * 8 + ["validation"] * 3 + ["test"] * 3,
        "label": [0, 0, 0, 1, 1, 1, 1, 1] + [0, 0, 1] + [0, 1, 0],
        "generator": [None, None, None, "flux", "dcgan", "flux", "sdxl", None] + [None, None, "flux"] + [None, "gpt-image", None],
    })


def ablation_table() -> pd.DataFrame:
    rows = [{"variant": "default", "expert": "fused", "AUC raw": 0.912345, "raw low": 0.8, "raw high": 1.0,
             "AUC re-encoded": float("nan"), "re-encoded low": np.float64(0.55556), "re-encoded high": 1.0, "seconds": None},
            {"variant": "default", "expert": "forensic", "AUC raw": 0.5, "raw low": 0.4, "raw high": 0.6,
             "AUC re-encoded": 0.5, "re-encoded low": 0.4, "re-encoded high": 0.6, "seconds": 113.61}]
    return pd.DataFrame(rows).set_index(["variant", "expert"])


RECIPE = train.DetectorRecipe(forensic=train.TrainConfig(epochs=25, batch_size=32, steps_per_epoch=45, patience=8),
                              semantic_feature="blocks", semantic_C=0.2)


def recorded(made: Detector, recipe: train.DetectorRecipe = RECIPE):
    forensic = run(made.model, 113.64, 190.06, 7, 15, "forensic_detector")
    seed = run(None, 1254.08, 3.0512, 2, 5, "seed_cnn")
    return record.training_config(made, forensic, recipe, split(), dataset="data/sample", skipped=2, baseline=seed,
                                  ablation=ablation_table(), created="2026-12-03")


def test_every_training_field_is_recorded_from_the_training_results() -> None:
    import keras

    made = detector()
    entries = record.config_entries(recorded(made))

    assert entries["architecture"] == ("semantic (clip-vit-b16-float-1c3365a51414: CLIP ViT-B/16 in float, rebuilt from the pinned "
                                       "INT8 weights, + logistic head) + forensic_detector, logistic stacking")
    assert entries["parameters"] == made.model.count_params() == 325_074
    assert (entries["keras_version"], entries["backend"], entries["created"]) == (keras.__version__, keras.backend.backend(), "2026-12-03")
    assert entries["train_config"]["steps_per_epoch"] == 45 and entries["train_config"]["model"] == "forensic_detector"
    assert "forensic" not in entries["recipe"] and entries["recipe"]["semantic_C"] == 0.2
    # Out of source: the train and validation real photos (3 + 2), each also re-encoded; fewer than 4 / 5 % of them.
    assert entries["threshold_basis"] == {"validation_real_views": 10, "target_fpr": 0.05, "too_few": True, "basis": "out-of-source"}
    assert entries["training_data"] == {"dataset": "data/sample", "images": 14, "skipped": 2, "train": 8, "validation": 3, "test": 3,
                                        "generators": ["dcgan", "flux", "gpt-image", "sdxl"], "grouped_by": None}
    assert entries["training"] == {"seconds": 113.6, "images_per_second": 190.1, "best_epoch": 7, "epochs_run": 15}
    assert entries["baseline_training"] == {"model": "seed_cnn", "seconds": 1254.1, "epochs_run": 5, "best_epoch": 2,
                                            "images_per_second": 3.05}
    assert entries["ablation"][0] == {"variant": "default", "expert": "fused", "AUC raw": 0.9123, "raw low": 0.8, "raw high": 1.0,
                                      "AUC re-encoded": None, "re-encoded low": 0.5556, "re-encoded high": 1.0, "seconds": None}
    assert entries["ablation"][1]["seconds"] == 113.61
    assert entries["out_of_source"] == OUT_OF_SOURCE and entries["name"] == "aiornot-experts-v3"


def test_a_detector_calibrated_on_validation_counts_only_the_validation_real_photos() -> None:
    recipe = train.DetectorRecipe(reencoded_views=False, target_fpr=0.5)
    basis = record.config_entries(recorded(detector(out_of_source=False), recipe))["threshold_basis"]
    assert basis == {"validation_real_views": 2, "target_fpr": 0.5, "too_few": True, "basis": "validation"}
    enough = record.threshold_basis(detector(out_of_source=False, widths=(8, 16)), train.DetectorRecipe(target_fpr=1.0), split())
    assert enough == {"validation_real_views": 4, "target_fpr": 1.0, "too_few": False, "basis": "validation"}


@pytest.mark.parametrize(("semantic", "expected"), [
    (None, "forensic_detector"),
    ("my-siglip-0123456789ab", "semantic (my-siglip-0123456789ab + logistic head) + forensic_detector, logistic stacking"),
    ("vgg16-hed-4502df9d0a88", "semantic (vgg16-hed-4502df9d0a88: HED's VGG16 convolutions, + logistic head) + forensic_detector, logistic stacking"),
])
def test_the_architecture_names_the_experts_the_detector_has(semantic: str | None, expected: str) -> None:
    assert record.architecture(detector(semantic=semantic, widths=(8, 16))) == expected


def test_the_saved_config_has_the_committed_models_keys(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Detector, "_export_tflite", staticmethod(lambda model, directory: None))  # the config is the point here
    made = detector(widths=(8, 16))
    made.config.update(record.config_entries(recorded(made)))
    made.save(tmp_path)

    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    committed = json.loads((DEFAULT / CONFIG_NAME).read_text())
    assert set(written) == set(committed) - LATER_SECTIONS
    for section in ("threshold_basis", "training_data", "training", "baseline_training"):
        assert set(written[section]) == set(committed[section]), section
    assert set(written["ablation"][0]) == set(committed["ablation"][0])
    assert set(written["train_config"]) == set(committed["train_config"]) and set(written["recipe"]) == set(committed["recipe"])
