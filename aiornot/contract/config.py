"""The typed, versioned contents of a model's ``detector.json``.

One file holds what using the model needs (tile policy, the semantic head, each expert's
calibration, the fusion rule, thresholds) and what was measured about it (training runs, the
evaluation of notebook 03, the ID-photo case study of notebook 04), from which the model card is
generated. :func:`load_config` and :func:`validate_config` check every key on the way in and out,
so a renamed or mistyped key fails at once with its name instead of printing "?" in the card.

A section that was not measured yet (``evaluation`` before notebook 03 ran) is ``None``. Tables
copied from a DataFrame (protocol rows, ablation rows, per-generator rows) keep their column names
as keys; their rows accept extra columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiornot.contract.scoring import Calibration, Fusion, LinearHead, Thresholds


#: The version of the layout below; bump it (and migrate the committed models) when a key changes meaning.
SCHEMA_VERSION = 1


#: The forensic expert's input: native-resolution tiles of this side, never resized.
DETECTOR_CROP_SIZE = 64
#: Tiles the forensic expert scores per image, spread over the whole picture (:func:`aiornot.io.transforms.tile_grid`).
DETECTOR_MAX_TILES = 64
#: Older models' fixed grid of central crops (:func:`aiornot.io.transforms.crop_grid`), for configs without ``max_tiles``.
DETECTOR_CROPS_PER_IMAGE = 4

class ModelConfigError(ValueError):
    """``detector.json`` does not match the schema; the message names the file and the bad key."""


class _Section(BaseModel):
    """A part of the config whose keys are all known: an unknown key is a mistake."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class _Row(BaseModel):
    """A row of a table written from a DataFrame: named columns are read, further columns kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


# ------------------------------------------------------------------------------ what scoring uses
# The fitted rules are defined once, in aiornot.contract.scoring: the sections below are those classes.
#: The names these sections had when they were separate classes; the same classes now.
CalibrationConfig, ThresholdsConfig, HeadConfig, FusionConfig = Calibration, Thresholds, LinearHead, Fusion


class SemanticConfig(_Section):
    """The semantic expert: a frozen encoder's features and a fitted head."""

    encoder: str | None = None
    #: The offline backbone's name in notebook 03's comparison (``clip_vit_b16``), when the encoder is one.
    backbone: str | None = None
    feature: str = "embeds"
    head: LinearHead
    calibration: Calibration = Calibration()
    encoder_spec: dict[str, Any] | None = None


class OutOfSourceConfig(_Section):
    """What the cross-fitted leave-curation-out predictions decided (:mod:`aiornot.training.out_of_source`)."""

    #: The AUC each expert was admitted on: the median of its per-curation-fold AUCs.
    expert_auc: dict[str, float]
    #: Each expert's AUC within each curation fold, and over all folds pooled (information).
    expert_fold_auc: dict[str, list[float]] = {}
    expert_pooled_auc: dict[str, float] = {}
    excluded: dict[str, str] = {}
    predictions: int
    folds: int
    real_flagged_by_curation: dict[str, float] = {}


class ThresholdBasis(_Section):
    """How many real-photo views the ``ai`` threshold rests on, and whether they were out of source."""

    validation_real_views: int
    target_fpr: float = 0.05
    too_few: bool = False
    basis: Literal["validation", "out-of-source"] = "validation"


# --------------------------------------------------------------------------- what training recorded
class TrainingData(_Section):
    """The dataset and split the model was trained on (notebook 02)."""

    dataset: str | None = None
    images: int | None = None
    skipped: int = 0
    train: int | None = None
    validation: int | None = None
    test: int | None = None
    generators: list[str] = []
    #: The column the split kept whole groups of (None: image by image, the data naming no source for every row).
    grouped_by: str | None = "source"


class TrainingRun(_Section):
    """One model's measured training budget (notebook 02)."""

    model: str | None = None
    seconds: float
    images_per_second: float
    best_epoch: int
    epochs_run: int


class AblationRow(_Row):
    """One variant of the measured-choices table (notebook 02, validation split)."""

    variant: str
    expert: str
    auc_raw: float | None = Field(None, alias="AUC raw")
    raw_low: float | None = Field(None, alias="raw low")
    raw_high: float | None = Field(None, alias="raw high")
    auc_reencoded: float | None = Field(None, alias="AUC re-encoded")
    reencoded_low: float | None = Field(None, alias="re-encoded low")
    reencoded_high: float | None = Field(None, alias="re-encoded high")


# --------------------------------------------------------------------------- what evaluation measured
class Interval(_Section):
    """A point estimate with its 95 % interval (NaN where a metric is undefined on the sample)."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class ProtocolSummary(_Section):
    """The leave-out protocol's headline numbers (:func:`aiornot.evaluation.protocol.headline`)."""

    folds: int = 0
    modern_generators: int = 0
    modern_mean_auc: float | None = None
    modern_min_auc: float | None = None
    modern_mean_flagged: float | None = None
    real_packages_flagged: dict[str, list[float | None]] = {}
    families: dict[str, float | None] = {}
    stylegan2_tpr_at_5pct_fpr: float | None = None
    stylegan2_auc: float | None = None
    cross_curation_folds: int = 0
    cross_curation_mean_auc: float | None = None
    cross_curation_min_auc: float | None = None
    cross_curation_auc: dict[str, float | None] = {}
    unseen_real_flagged: dict[str, float | None] = {}
    unseen_real_flagged_mean: float | None = None
    unseen_real_flagged_max: float | None = None


class ProtocolRow(_Row):
    """One held-out group in one view (raw or re-encoded)."""

    held_out: str = Field(alias="held out")
    kind: str | None = None
    label_class: str = Field(alias="class")
    view: str
    ai_images: int | None = Field(None, alias="AI images")
    real_images: int | None = Field(None, alias="real images")
    roc_auc: float | None = Field(None, alias="ROC AUC")
    auc_low: float | None = Field(None, alias="AUC low")
    auc_high: float | None = Field(None, alias="AUC high")
    flagged_ai: float | None = Field(None, alias="flagged ai")
    flagged_low: float | None = Field(None, alias="flagged low")
    flagged_high: float | None = Field(None, alias="flagged high")
    real_portraits_flagged: float | None = Field(None, alias="real portraits flagged")
    semantic_auc: float | None = Field(None, alias="semantic AUC")
    forensic_auc: float | None = Field(None, alias="forensic AUC")


class FoldBudget(_Section):
    """The forensic CNN's budget in each refitted fold."""

    epochs: int
    steps_per_epoch: int


class Protocol(_Section):
    """The leave-out protocol of notebook 03."""

    summary: ProtocolSummary = ProtocolSummary()
    fold_budget: FoldBudget | None = None
    rows: list[ProtocolRow] = []


class GeneratorRow(_Row):
    """Per generator: images, share flagged ``ai`` and mean score (:func:`aiornot.evaluation.metrics.per_group`)."""

    generator: str
    label: int
    images: int
    mean_score: float | None = None
    flagged_ai: float | None = None


class RealPortraitsFlagged(_Section):
    """Real test portraits flagged ``ai``: [share, low, high] per copy, and how many there were."""

    original: list[float | None] | None = None
    reencoded: list[float | None] | None = Field(None, alias="re-encoded")
    images: int = 0


class BackboneComparison(_Section):
    """Notebook 03's backbone comparison: per backbone, :func:`aiornot.evaluation.protocol.backbone_summary`'s figures."""

    summary: dict[str, dict[str, float | None]] = {}
    folds: int | None = None


class Evaluation(_Section):
    """The held-out test split and the leave-out protocol (notebook 03)."""

    test_images: int | None = None
    test_real: int | None = None
    test_ai: int | None = None
    metrics: dict[str, dict[str, Interval]] = {}
    comparison: str | None = None
    laundered: str | None = None
    speed: str | None = None
    warning: str | None = None
    robustness: dict[str, dict[str, float | None]] = {}
    per_generator: dict[str, list[GeneratorRow]] = {}
    operating_thresholds: dict[str, float] = {}
    fusion: str | None = None
    protocol: Protocol | None = None
    real_portraits_flagged: RealPortraitsFlagged = RealPortraitsFlagged()
    backbones: BackboneComparison | None = None


class IdPhotoCaseStudy(_Section):
    """The ID-photo case study of notebook 04, on held-out portraits."""

    portraits: int | None = None
    real: int | None = None
    ai: int | None = None
    faces_found: int | None = None
    best_view: str | None = None
    views: dict[str, dict[str, Interval]] = {}
    real_flagged: dict[str, float] = {}
    ai_flagged: dict[str, float] = {}
    id_frame_life: dict[str, dict[str, float | None]] = {}
    #: The service's verdict and strong-JPEG caveat on the portraits' files, per condition: ``<class>_<share>``
    #: with class ``real``/``ai`` and share ``called_ai``, ``caveat_shown``, ``neither``.
    caveat_outcomes: dict[str, dict[str, float]] = {}
    warning: str | None = None
    fusion: str | None = None
    padding: dict[str, dict[str, float]] | None = None
    training_portrait_share: dict[str, float] = {}
    #: Haar face detection on every real portrait of the sample: how many, none found, more than one found.
    face_detection: dict[str, int] | None = None


# ------------------------------------------------------------------------------------- the whole file
class ModelConfig(_Section):
    """Everything in ``detector.json``. Sections not written yet are ``None`` ("not measured")."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = "aiornot-detector"
    version: str | None = None
    crop_size: int = DETECTOR_CROP_SIZE
    max_tiles: int | None = None  # None: an older model that scores crops_per_image central crops
    crops_per_image: int = DETECTOR_CROPS_PER_IMAGE
    architecture: str | None = None
    parameters: int | None = None
    keras_version: str | None = None
    backend: str | None = None
    created: str | None = None
    size_mb: float | None = None
    train_config: dict[str, Any] | None = None  # train.TrainConfig's fields (it validates them)
    recipe: dict[str, Any] | None = None  # train.DetectorRecipe's fields, less the forensic config
    threshold_basis: ThresholdBasis | None = None
    training_data: TrainingData | None = None
    training: TrainingRun | None = None
    baseline_training: TrainingRun | None = None
    ablation: list[AblationRow] | None = None
    calibration: Calibration = Calibration()  # the forensic expert's
    thresholds: Thresholds = Thresholds()
    semantic: SemanticConfig | None = None
    fusion: Fusion | None = None
    out_of_source: OutOfSourceConfig | None = None
    evaluation: Evaluation | None = None
    id_photo_case_study: IdPhotoCaseStudy | None = None


def validate_config(config: dict[str, Any], where: str = "detector.json") -> ModelConfig:
    """``config`` as a :class:`ModelConfig`; :class:`ModelConfigError` names the first bad key."""
    try:
        return ModelConfig.model_validate(config)
    except ValidationError as error:
        raise ModelConfigError(f"{where}: {_describe(error)}") from None


def load_config(path: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Read and validate a ``detector.json``: the typed config and the raw dict it came from.

    A file without ``schema_version`` predates the schema and is refused with what to do.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelConfigError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ModelConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if "schema_version" not in raw:
        raise ModelConfigError(f"{path}: no schema_version (written before the config had a schema); add "
                               f'"schema_version": {SCHEMA_VERSION} after checking its keys, or retrain with `make reports`')
    return validate_config(raw, str(path)), raw


def _describe(error: ValidationError) -> str:
    """The first problem, as ``evaluation.metrics.detector.ROC AUC.value: Input should be a valid number (got 'x')``."""
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"]) or "the config"
    if problem["type"] == "extra_forbidden":
        return f"unknown key {key!r} (a typo, or a key this version of aiornot does not know)"
    if problem["type"] == "missing":
        return f"missing key {key!r}"
    return f"{key}: {problem['msg']} (got {problem['input']!r})"
