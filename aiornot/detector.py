"""``Detector``: one object that turns an image into a calibrated, explained verdict.

Training, notebooks, ``aiornot scan``, the web service and Ray batch scoring all use it, so a
photo gets the same score everywhere. A model directory holds everything needed to use it right:

* ``model.keras`` — the forensic expert's network (scores one native-resolution tile, outputs a logit);
* ``detector.json`` — the tile policy, the semantic expert's head, each expert's calibration, the
  fusion rule, decision thresholds, the training-data summary and the measured metrics (the model
  card is generated from it).

How a photo is scored (see :mod:`aiornot.model.experts`): decode safely → each expert's calibrated
P(AI) — *forensic*: mean logit over native-resolution tiles (up to ``max_tiles``); *semantic*:
frozen CLIP features and a fitted head → fused by the stated rule (logistic stacking fitted on
validation images) → verdict ``ai`` / ``real`` / ``inconclusive`` by thresholds chosen on
validation real photos at a stated FPR → provenance evidence (C2PA, IPTC, generator metadata,
watermark) combined by a second stated rule. Every result carries the score of each expert the fusion
uses (one it weighs 0 is not run) and both rules.
The steps from a source to its Result, built once, are :mod:`aiornot.predict`; this module holds the
model and its scoring.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from aiornot.contract import paths
from aiornot.io import transforms
from aiornot import predict as pipeline
from aiornot.model.experts import SemanticExpert, fit_calibration, fit_fusion
from aiornot.predict import Source
from aiornot.contract.jsonsafe import json_safe
from aiornot.contract.config import SCHEMA_VERSION, ModelConfig, ModelConfigError, load_config, validate_config
# The fitted rules are defined once, in aiornot.contract.scoring; importable from here too.
from aiornot.contract.scoring import Calibration, Fusion, Thresholds, threshold_at_fpr  # noqa: F401 - re-exported
from aiornot.contract.result import VERDICTS, Result  # noqa: F401 - VERDICTS re-exported: the contract lives in aiornot.contract.result

__all__ = [
    "Calibration", "Detector", "Fusion", "ModelConfigError", "ModelNotFoundError", "Result", "Thresholds", "model_directory",
    "threshold_at_fpr", "update_config",
]

CONFIG_NAME = "detector.json"
MODEL_NAME = "model.keras"
#: Decoded pixels one scoring batch may hold (3 bytes each): one image at the decoder's limit fills it.
DEFAULT_BATCH_PIXELS = 64_000_000
# Images whose tiles are cut and scored together: bounds the tiles in memory (16 × 64 tiles).
IMAGES_PER_PASS = 16


class ModelNotFoundError(FileNotFoundError):
    """No trained model where one was expected."""


def model_directory(model_dir: str | Path | None = None) -> Path:
    """The model folder (default ``models/default``) as an absolute path, checked to hold a model."""
    directory = Path(model_dir).resolve() if model_dir else paths.DEFAULT_MODEL_DIR
    if not (directory / MODEL_NAME).is_file() or not (directory / CONFIG_NAME).is_file():
        raise ModelNotFoundError(
            f"no trained model in {directory} (expected {MODEL_NAME} and {CONFIG_NAME}); "
            "run `make reports` to train the default model, or pass --model DIR"
        )
    return directory


def update_config(model_dir: str | Path, **entries: Any) -> dict[str, Any]:
    """Merge ``entries`` into a model's ``detector.json`` (e.g. a case study's measured summary).

    The network files are left as they are; the merged config is validated before it is written
    (:class:`ModelConfigError` names a bad key, and the file is left unchanged). Returns it.
    """
    config_file = model_directory(model_dir) / CONFIG_NAME
    _, config = load_config(config_file)
    config.update(entries)
    _write_config(config_file, config)
    return config


class Detector:
    """A trained detector: its experts, their calibration, the fusion rule and the thresholds.

    >>> detector = Detector.load()                    # models/default
    >>> result = detector.predict("photo.jpg")
    >>> result.verdict, result.score
    """

    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        """``config``: the contents of ``detector.json`` (validated here; see :class:`ModelConfig`)."""
        settings: ModelConfig = validate_config(config)
        self.model = model
        self.config = config
        self.name: str = settings.name
        self.crop_size: int = settings.crop_size
        # Tile policy: up to ``max_tiles`` tiles over the whole image; older models scored a fixed
        # grid of ``crops_per_image`` crops.
        self.max_tiles: int | None = settings.max_tiles or None
        self.crops_per_image: int = settings.crops_per_image
        self.calibration: Calibration = settings.calibration  # the forensic expert's
        self.semantic: SemanticExpert | None = SemanticExpert.from_config(settings.semantic) if settings.semantic else None
        self.fusion: Fusion = settings.fusion or Fusion.one_expert("forensic")
        self.thresholds: Thresholds = settings.thresholds
        self.runtime = "keras"
        self.source_dir: Path | None = None

    # ----------------------------------------------------------------------------- persistence
    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, runtime: str = "auto", threads: int | None = None) -> "Detector":
        """Load a model directory (default ``models/default``).

        ``runtime``: ``keras``; ``tflite`` (the exported ``model.tflite``, measured faster on CPU
        by ``make bench``); or ``auto`` — TFLite where the file and TensorFlow are present, else Keras.
        ``threads``: CPU threads for the TFLite runtime (default: every CPU this process may use).
        """
        import keras

        from aiornot.model import tflite_runtime

        directory = model_directory(model_dir)
        model_file, config_file = directory / MODEL_NAME, directory / CONFIG_NAME
        if runtime not in ("auto", "keras", "tflite"):
            raise ValueError(f"runtime must be auto, keras or tflite, not {runtime!r}")
        _, config = load_config(config_file)
        tflite_file = directory / tflite_runtime.TFLITE_NAME
        if runtime == "tflite" and not tflite_file.is_file():
            raise ModelNotFoundError(f"no {tflite_file.name} in {directory}; re-save the model with the TensorFlow backend")
        use_tflite = runtime == "tflite" or (runtime == "auto" and tflite_file.is_file() and tflite_runtime.available())
        model = tflite_runtime.TFLiteNetwork(tflite_file, threads) if use_tflite else keras.saving.load_model(model_file, compile=False)
        detector = cls(model, config)
        detector.runtime = "tflite" if use_tflite else "keras"
        detector.source_dir = directory
        return detector

    def save(self, model_dir: str | Path) -> Path:
        """Write ``model.keras`` and ``detector.json`` (with current calibration and thresholds)."""
        import keras

        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        if hasattr(self.model, "save"):
            model = self.model
            if getattr(model, "optimizer", None) is not None:
                # Inference needs the weights, not the optimizer's state (which would triple the file).
                # A new functional model over the same layers is uncompiled; clone_model would copy
                # the compilation, and with it a built optimizer.
                model = keras.Model(model.inputs, model.outputs, name=model.name)
            model.save(directory / MODEL_NAME)
            self._export_tflite(model, directory)
        else:
            self._copy_network_files(directory)
        self.config.update(
            name=self.name, crop_size=self.crop_size, crops_per_image=self.crops_per_image, max_tiles=self.max_tiles,
            calibration=self.calibration.model_dump(), thresholds=self.thresholds.model_dump(),
            semantic=self.semantic.to_config() if self.semantic else None, fusion=self.fusion.model_dump(),
            size_mb=round((directory / MODEL_NAME).stat().st_size / 1e6, 3),
        )
        _write_config(directory / CONFIG_NAME, self.config)
        return directory

    def _copy_network_files(self, directory: Path) -> None:
        """A detector running on TFLite keeps the files it was loaded from: copy them if saved elsewhere."""
        import shutil

        from aiornot.model import tflite_runtime

        if self.source_dir is None:
            raise ValueError("this detector's network cannot be saved: it was not loaded from a model directory")
        if self.source_dir.resolve() != directory.resolve():
            for name in (MODEL_NAME, tflite_runtime.TFLITE_NAME):
                shutil.copy2(self.source_dir / name, directory / name)

    @staticmethod
    def _export_tflite(model: Any, directory: Path) -> None:
        """Write ``model.tflite`` beside the Keras file when TensorFlow is the backend (else remove a stale one)."""
        import keras

        from aiornot.model import tflite_runtime

        target = directory / tflite_runtime.TFLITE_NAME
        if keras.backend.backend() == "tensorflow" and tflite_runtime.available():
            tflite_runtime.export(model, target)
        elif target.exists():
            target.unlink()

    # --------------------------------------------------------------------------------- scoring
    @property
    def expert_names(self) -> tuple[str, ...]:
        return ("semantic", "forensic") if self.semantic else ("forensic",)

    def crops(self, pixels: np.ndarray) -> np.ndarray:
        """The native-resolution tiles (or, for older models, crops) the forensic expert scores."""
        if self.max_tiles:
            return transforms.tile_grid(pixels, self.crop_size, self.max_tiles)
        return transforms.crop_grid(pixels, self.crop_size, self.crops_per_image)

    def logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The forensic expert's mean tile logit per image (uncalibrated)."""
        means = []
        for start in range(0, len(images), IMAGES_PER_PASS):  # a pass at a time: memory of a batch, not of the list
            per_image = [self.crops(p) for p in images[start : start + IMAGES_PER_PASS]]
            logits = self.crop_logits(np.concatenate(per_image))
            bounds = np.cumsum([len(c) for c in per_image])[:-1]
            means.extend(part.mean() for part in np.split(logits, bounds))
        return np.array(means, dtype=np.float64) if means else np.zeros(0)

    def crop_logits(self, crops: np.ndarray, chunk: int = 64) -> np.ndarray:
        """The network's logit for each crop, in chunks padded to a power of two (at most ``chunk``).

        Padding to a few fixed shapes means the compiled function is traced at most five times,
        whatever the number of images; retracing for every batch size costs far more.
        """
        crops = np.asarray(crops, dtype=np.float32)
        outputs = []
        for start in range(0, len(crops), chunk):
            part = crops[start : start + chunk]
            size = min(chunk, 1 << max(2, (len(part) - 1).bit_length()))
            padded = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), np.float32)]) if len(part) < size else part
            outputs.append(np.asarray(self.model.predict_on_batch(padded)).reshape(-1)[: len(part)])
        return np.concatenate(outputs)

    @property
    def used_experts(self) -> tuple[str, ...]:
        """The experts prediction runs: those the fusion rule weighs (non-zero weight), in :attr:`expert_names`' order.

        An expert at weight 0 cannot move the fused score, so running it would only cost time (the
        forensic CNN on up to 64 tiles). A rule that weighs none of them is a constant: every expert
        still runs then, so a Result has scores to show.
        """
        used = tuple(name for name in self.expert_names if name in self.fusion.used_experts)
        return used or self.expert_names

    def expert_logits(self, images: Sequence[np.ndarray], *, used_only: bool = False) -> dict[str, np.ndarray]:
        """Each expert's uncalibrated logit per image (what calibration is fitted on).

        ``used_only``: only the experts of :attr:`used_experts` (prediction); by default every expert
        (evaluation and refitting need them all).
        """
        names = self.used_experts if used_only else self.expert_names
        logits = {}
        if "forensic" in names:
            logits["forensic"] = self.logits(images)
        if self.semantic and "semantic" in names:
            logits["semantic"] = self.semantic.logits(images)
        return logits

    def expert_scores(self, images: Sequence[np.ndarray], *, used_only: bool = False) -> dict[str, np.ndarray]:
        """Each expert's calibrated P(AI) per image, from pixels alone (``used_only``: see :meth:`expert_logits`)."""
        logits = self.expert_logits(images, used_only=used_only)
        scores = {}
        if "forensic" in logits:
            scores["forensic"] = self.calibration(logits["forensic"])
        if self.semantic and "semantic" in logits:
            scores["semantic"] = self.semantic.calibration(logits["semantic"])
        return scores

    def scores(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated P(AI) per image, from pixels alone: the experts fused by the stated rule."""
        return self.fuse(self.expert_scores(images))

    def fuse(self, expert_scores: dict[str, np.ndarray]) -> np.ndarray:
        """Apply the fusion rule to expert scores already computed (evaluation reuses them)."""
        return self.fusion(expert_scores)

    def calibrate(self, images: Sequence[np.ndarray], labels: np.ndarray, *, target_fpr: float = 0.05, target_fnr: float = 0.05) -> None:
        """On held-out validation images (never the test set): calibrate each expert, fit the fusion
        rule, and choose the thresholds on the fused score."""
        self.calibrate_from_logits(self.expert_logits(images), labels, target_fpr=target_fpr, target_fnr=target_fnr)

    def calibrate_from_logits(self, logits: dict[str, np.ndarray], labels: np.ndarray, *, target_fpr: float = 0.05,
                              target_fnr: float = 0.05) -> None:
        """:meth:`calibrate` from each expert's uncalibrated logits, already computed (e.g. streamed batch by batch).

        ``logits`` has one array per expert of :attr:`expert_names`, aligned with ``labels``.
        """
        missing = [name for name in self.expert_names if name not in logits]
        if missing:
            raise KeyError(f"calibration needs the logits of every expert; missing {missing}")
        labels = np.asarray(labels)
        self.calibration = fit_calibration(logits["forensic"], labels)
        scores = {"forensic": self.calibration(logits["forensic"])}
        if self.semantic:
            self.semantic.calibration = fit_calibration(logits["semantic"], labels)
            scores["semantic"] = self.semantic.calibration(logits["semantic"])
        self.fusion = fit_fusion(scores, labels) if len(scores) > 1 else Fusion.one_expert("forensic", fitted_on=len(labels))
        self.thresholds = Thresholds.choose(self.fusion(scores), labels, target_fpr, target_fnr)

    def heatmap(self, pixels: np.ndarray, stride: int | None = None, max_tiles: int = 256) -> np.ndarray:
        """The forensic expert's P(AI) of each native-resolution tile: where it sees generator traces.

        Returns a 2-D array (tiles down × tiles across); the stride grows on large images so that
        at most about ``max_tiles`` tiles are scored.
        """
        size = self.crop_size
        padded = transforms.pad_to(pixels, size)
        height, width = padded.shape[:2]
        stride = stride or size
        while ((height - size) // stride + 1) * ((width - size) // stride + 1) > max_tiles:
            stride *= 2
        tops = range(0, height - size + 1, stride)
        lefts = range(0, width - size + 1, stride)
        tiles = np.stack([padded[t : t + size, l : l + size] for t in tops for l in lefts])
        return self.calibration(self.crop_logits(tiles).reshape(len(tops), len(lefts)))

    # ------------------------------------------------------------------------------ prediction
    def predict(
        self,
        source: Source,
        *,
        path: str | None = None,
        id_photo: bool = False,
        face_score: bool = False,
        provenance: bool = True,
        explain: bool = False,
        data: bytes | None = None,
    ) -> Result:
        """Score one image: :meth:`predict_many` of one. Never raises for a bad image (the Result carries ``error``).

        ``source``: a path, bytes or a file object; pixels in memory (a numpy array or a Pillow image:
        :func:`aiornot.io.decode.from_pixels`, scored as their file would be, without provenance); a header already parsed by
        :func:`aiornot.io.decode.read_header` (it is not parsed again); or an image already decoded
        by :func:`aiornot.io.decode.open_image` — then pass its file's bytes as ``data`` too, for the
        provenance signals and the md5. ``path``: the Result's ``path`` (default: a path as given).
        ``id_photo``, ``face_score``: see :meth:`predict_many`.
        """
        label = path if path is not None else (str(source) if isinstance(source, (str, Path)) else None)
        item = pipeline.read_input(source, label, data=data)
        return next(self.predict_many([item], batch_size=1, id_photo=id_photo, face_score=face_score, provenance=provenance,
                                      explain=explain))

    def predict_many(
        self,
        sources: Iterable[Source],
        *,
        labels: Iterable[str | None] | None = None,
        batch_size: int = 32,
        id_photo: bool = False,
        face_score: bool = False,
        provenance: bool = True,
        explain: bool = False,
        progress: bool = False,
        total: int | None = None,
        max_batch_pixels: int | None = DEFAULT_BATCH_PIXELS,
    ) -> Iterator[Result]:
        """Score many images in batches, one Result per source, in order (see :mod:`aiornot.predict`).

        ``id_photo``: add the face box and the ID checks. ``face_score``: also score the face crop
        alone (``Result.face_score``; information only, never part of the verdict, and as costly as
        a second photo); it needs ``id_photo`` and raises :class:`ValueError` here, at the call,
        when asked without it. Each batch goes through the experts in one pass, its face crops
        included when asked for. A batch ends at ``batch_size`` images or once its decoded pixels
        reach ``max_batch_pixels``, whichever comes first: 32 images of 64 megapixels would
        otherwise hold ~6 GB of pixels. ``labels``: the ``path`` each Result carries, one per
        source (default: a path as given, ``<bytes>`` for bytes).
        """
        # Checked now, not at the first next(): a wrong option must fail where it was written.
        options = pipeline.PredictOptions(id_photo=id_photo, face_score=face_score, provenance=provenance, explain=explain)
        named = zip(sources, labels, strict=True) if labels is not None else ((s, pipeline.default_label(s)) for s in sources)
        return self._predict_batches(named, batch_size=batch_size, options=options, progress=progress, total=total,
                                     max_batch_pixels=max_batch_pixels)

    def _predict_batches(self, named: Iterable[tuple[Source, str | None]], *, batch_size: int, options: pipeline.PredictOptions,
                         progress: bool, total: int | None, max_batch_pixels: int | None) -> Iterator[Result]:
        """The Results of :meth:`predict_many`, lazily, batch by batch."""
        from tqdm import tqdm

        inputs = (pipeline.read_input(source, label) for source, label in named)
        bar = tqdm(total=total, desc="scoring", unit="img", disable=not progress, file=sys.stderr)
        try:
            for batch in pipeline.batches(inputs, batch_size, max_batch_pixels):
                yield from pipeline.score_batch(self, batch, options)
                bar.update(len(batch))
        finally:
            bar.close()

    def info(self) -> dict[str, Any]:
        """What a client needs to know about this model (the API's ``/v1/models``)."""
        keys = ("name", "version", "created", "architecture", "parameters", "crop_size", "crops_per_image", "max_tiles", "metrics", "training_data")
        info = {k: self.config[k] for k in keys if k in self.config}
        info.update(name=self.name, runtime=self.runtime, thresholds=self.thresholds.model_dump(), calibration=self.calibration.model_dump(),
                    experts=list(self.expert_names), fusion=self.fusion.rule)
        return info


def _write_config(path: Path, config: dict[str, Any]) -> None:
    """Validate ``config`` (with this schema's version) and write it; a bad key leaves the file as it was."""
    config = {"schema_version": SCHEMA_VERSION, **config}
    text = json.dumps(json_safe(config), indent=2, ensure_ascii=False)  # keeps NaN; an unknown type raises
    validate_config(json.loads(text), str(path))  # as it will be read back: numpy values become plain numbers
    path.write_text(text)
