"""The seed study at its real size, streamed: ``aiornot full-run DATA [--test TEST]`` (``make full-run``).

Reads the Hugging Face ``competitions/aiornot`` train split (or any layout :func:`aiornot.io.reader.open_table`
reads), and in bounded memory — pixels are decoded a batch at a time, never all at once:

1. splits it as the seed did, from the labels alone (18,618 → 13,032 / 5,586, class ratio kept), then
   carves a *tuning* part out of the seed's 13,032 training rows (``--tuning-fraction``, 15 %: stratified
   by label, grouped by ``source`` when the table has one, seeded) — see :func:`split_rows`;
2. trains the seed's CNN and our forensic CNN with :func:`aiornot.training.feed.fit_stream` on the training rows
   less the tuning rows, early-stopping on the tuning rows (any Keras backend: ``KERAS_BACKEND=jax``
   on a GPU; ``--mixed-precision`` for float16 compute there);
3. fits the semantic expert's head on frozen encoder features of those same training rows (and their
   re-encoded copies, made batch by batch), reading what the feature store already holds —
   ``aiornot ray-embed`` fills it on Ray Data — and computing the rest in batches;
4. calibrates both experts, fits the fusion rule and chooses thresholds on the tuning rows
   (each expert's logits streamed batch by batch, then fitted; ``--no-semantic``: forensic only);
5. scores the seed's 5,586 validation rows with both, streaming, and writes the seed's per-class table
   and ROC AUC for each; with ``--test``, scores the test split into Parquet and writes the seed's
   table if it has labels, else the competition's submission CSV and the reason no metric is shown.

Which rows served what: ``train`` fits weights and the semantic head; ``tuning`` decides early stopping,
calibration, fusion and thresholds; ``validation`` (the seed's 5,586) is touched by nothing but the
reported metrics, so those are not tuned on. ``summary.json`` gives the three counts (``split``) and
``split.csv`` each row's part.

Everything lands in ``--out`` (default ``reports/full_run``): models, training curves, score
Parquet folders, tables, the submission, ``split.csv`` and ``summary.json``. Features are looked up
by the sha256 of the decoded picture, so a store filled by ``aiornot ray-embed`` is reused as it is.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aiornot.io.datasets import DatasetError

#: The semantic head of the shipped model (reports/params/02_cnn_training.yaml): chosen under the cross-curation folds.
SHIPPED_SEMANTIC_FEATURE, SHIPPED_SEMANTIC_C = "blocks", 0.2

#: Share of the seed's training rows set aside for early stopping, calibration, fusion and thresholds.
TUNING_FRACTION = 0.15

#: What each part of :class:`RunRows` is used for (written to ``summary.json`` next to the counts).
SPLIT_ROLES = {
    "train": "CNN weights and the semantic head",
    "tuning": "early stopping, calibration, fusion and thresholds (carved out of the seed's training rows)",
    "validation": "the reported metrics only: the seed's validation rows, untouched by training and tuning",
}


@dataclass(frozen=True)
class RunRows:
    """Row positions into the table, by what they serve; the three are disjoint and cover every row."""

    train: np.ndarray
    tuning: np.ndarray
    validation: np.ndarray

    def counts(self) -> dict[str, int]:
        """Rows per part, for ``summary.json``."""
        return {"train": len(self.train), "tuning": len(self.tuning), "validation": len(self.validation)}

    def roles(self, rows: int) -> np.ndarray:
        """Each of ``rows`` table rows' part name (what ``split.csv`` records)."""
        names = np.full(rows, "", dtype=object)
        for name in ("train", "tuning", "validation"):
            names[getattr(self, name)] = name
        return names


def split_rows(labels: pd.DataFrame, *, tuning_fraction: float = TUNING_FRACTION, seed: int = 42) -> RunRows:
    """The seed's split, its training part split again into train and tuning.

    This is :func:`aiornot.io.datasets.three_way_split` with ``exact=True`` — the notebooks' split,
    sized exactly: its ``test`` part is the seed's validation rows (exactly 5,586 of 18,618, so the
    reported metrics stay comparable with the seed), its ``validation`` part our tuning rows
    (``tuning_fraction`` of the rest, seeded ``seed + 1``). Both parts are stratified by label and
    grouped by ``source`` when the table has one, so no source sits on two sides.
    """
    from aiornot.io import datasets

    parts = datasets.three_way_split(labels, validation_fraction=tuning_fraction, seed=seed, exact=True)["split"].to_numpy()
    return RunRows(train=np.flatnonzero(parts == "train"), tuning=np.flatnonzero(parts == "validation"),
                   validation=np.flatnonzero(parts == "test"))


def train_models(table, parts: RunRows, args) -> dict:
    """Both CNNs trained on the streamed training rows, early-stopped on the tuning rows (never the
    reported validation rows); saved with their curves under ``args.out``."""
    from aiornot.training import feed
    from aiornot.training.train import TrainConfig, save_run

    runs = {}
    for name, epochs in (("seed_cnn", args.seed_epochs), ("forensic_detector", args.epochs)):
        config = TrainConfig(model=name, epochs=epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch)
        result = feed.fit_stream(table, parts.train, parts.tuning, config, validation_steps=args.validation_steps,
                                 workers=args.workers, use_multiprocessing=args.multiprocessing, verbose=not args.quiet)
        save_run(result, args.out, name=name)
        runs[name] = result
    return runs


def semantic_expert(table, rows, args, encoder, recipe):
    """The semantic expert, its head fitted on the training rows' features, streamed batch by batch.

    Each batch is decoded, re-encoded where the recipe asks (:func:`aiornot.training.train.with_reencoded`)
    and embedded through the feature store (what is stored is read, the rest computed and stored);
    only the features are kept, never the pixels. Returns (expert, summary figures).
    """
    from aiornot.io import stream
    from aiornot.model import encoders
    from aiornot.model.experts import SemanticExpert, fit_semantic_head
    from aiornot.training.train import with_reencoded

    store = encoders.FeatureStore(Path(args.store) if args.store else encoders.FEATURE_STORE_DIR / encoder.id)
    features, labels, skipped = [], [], 0
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=not args.quiet,
                                       description="semantic features"):
        skipped += len(batch.skipped)
        if batch.images:
            views, view_labels = with_reencoded(batch.images, batch.labels, enabled=recipe.reencoded_views)
            features.append(encoders.embed_with_store(encoder, views, store, kind=recipe.semantic_feature, progress=False))
            labels.append(view_labels)
    if not features:
        raise DatasetError("no training image could be decoded: the semantic head has nothing to learn from")
    labels = np.concatenate(labels)
    head = fit_semantic_head(np.concatenate(features), labels, None, recipe)
    expert = SemanticExpert(head, feature=recipe.semantic_feature, encoder=encoder, store=store, encoder_id=encoder.id)
    return expert, {"views": len(labels), "skipped": skipped, "store": str(store.directory)}


def calibrated_detector(model, table, rows, args, *, semantic=None, reencoded: bool = False):
    """The forensic CNN (and ``semantic``) as a :class:`~aiornot.detector.Detector`, calibrated on ``rows``
    (the tuning rows: calibration, fusion and thresholds must not see the rows that are reported).

    Each expert's logits are computed batch by batch (with each image's re-encoded copy when
    ``reencoded``), then calibration, fusion and thresholds are fitted on the collected logits.
    """
    from aiornot.io import stream
    from aiornot.detector import Detector
    from aiornot.training.train import with_reencoded

    detector = Detector(model, {"name": "aiornot-full-run", "crop_size": 64, "max_tiles": 64})
    detector.semantic = semantic
    logits: dict[str, list[np.ndarray]] = {name: [] for name in detector.expert_names}
    labels = []
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=not args.quiet,
                                       description="tuning logits"):
        views, view_labels = with_reencoded(batch.images, batch.labels, enabled=reencoded)
        for name, values in _expert_logits(detector, views).items():
            logits[name].append(values)
        labels.append(view_labels)
    detector.calibrate_from_logits({name: np.concatenate(parts) for name, parts in logits.items()}, np.concatenate(labels),
                                   target_fpr=args.target_fpr)
    return detector


def _expert_logits(detector, images) -> dict[str, np.ndarray]:
    """Each expert's uncalibrated logit per image (what calibration is fitted on)."""
    logits = {"forensic": detector.logits(images)}
    if detector.semantic:
        logits["semantic"] = detector.semantic.logits(images)
    return logits


def seed_scores(model, table, rows, args) -> np.ndarray:
    """The seed CNN's P(AI) per row (NaN where unreadable), whole images resized to 256², streamed."""
    from aiornot.io import stream, transforms

    scores = np.full(len(rows), np.nan)
    position = {row: i for i, row in enumerate(rows)}
    resize = lambda pixels: transforms.resize(pixels, (256, 256))  # noqa: E731 — the seed's input
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, transform=resize, progress=not args.quiet,
                                       description="seed CNN scores"):
        if batch.images:
            values = np.asarray(model.predict_on_batch(np.stack(batch.images).astype(np.float32) / 255.0)).ravel()
            scores[[position[r] for r in batch.rows]] = values
    return scores


def report(name: str, ids, scores, labels, out: Path, threshold: float) -> dict:
    """The seed's table (CSV) and ROC AUC, or the submission; the figures for ``summary.json``."""
    from aiornot.evaluation.testset import seed_test_report

    result = seed_test_report(ids, scores, labels, submission=out / f"submission_{name}.csv", threshold=threshold)
    if result.labelled:
        result.table.to_csv(out / f"table_{name}.csv")
        return {"images": result.n, "roc_auc": round(result.roc_auc, 4), "notes": result.notes,
                "accuracy": round(float(result.table.loc["accuracy", "f1-score"]), 4)}
    return {"images": result.n, "submission": str(result.submission), "reason": result.reason, "notes": result.notes}


def run(args: argparse.Namespace, *, encoder: Any = None) -> dict:
    """The whole run; returns (and writes) the summary. ``args``: the options of ``aiornot full-run``.

    ``encoder``: the semantic expert's frozen encoder (default: the offline CLIP tower).
    """
    import keras

    from aiornot.io import stream
    from aiornot.training.train import DetectorRecipe

    started, out = time.perf_counter(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    table = stream.open_table(args.data)
    # The CLI leaves the default to this module (one place for the number; the parser does not import full_run).
    tuning = TUNING_FRACTION if args.tuning_fraction is None else args.tuning_fraction
    parts = split_rows(table.labels, tuning_fraction=tuning)
    write_split(table.labels, parts, out / "split.csv")
    summary = {"backend": keras.backend.backend(), "images": len(table), "split": parts.counts(), "split_roles": SPLIT_ROLES}
    runs = train_models(table, parts, args)
    # The options of `aiornot full-run` (aiornot.apps.cli); a semantic head left unspecified is the shipped model's.
    feature = args.semantic_feature or SHIPPED_SEMANTIC_FEATURE
    strength = SHIPPED_SEMANTIC_C if args.semantic_C is None else args.semantic_C
    recipe = DetectorRecipe(target_fpr=args.target_fpr, semantic_feature=feature, semantic_C=strength)
    semantic = None
    if not args.no_semantic:
        semantic, summary["semantic"] = semantic_expert(table, parts.train, args, encoder or _default_encoder(), recipe)
    detector = calibrated_detector(runs["forensic_detector"].model, table, parts.tuning, args, semantic=semantic,
                                   reencoded=semantic is not None and recipe.reencoded_views)
    detector.save(out / "detector")
    summary["fusion"] = detector.fusion.rule
    # From here on, the seed's validation rows: nothing above (weights, early stopping, calibration, thresholds) saw them.
    validation_ids = table.labels["id"].to_numpy()[parts.validation]
    validation_labels = table.labels["label"].to_numpy()[parts.validation]
    seed_cnn = seed_scores(runs["seed_cnn"].model, table, parts.validation, args)
    summary["validation_seed_cnn"] = report("validation_seed_cnn", validation_ids, seed_cnn, validation_labels, out, 0.5)
    scored = stream.score_table(table, detector, out / "scores_validation", rows=parts.validation, batch_size=args.batch_size,
                                progress=not args.quiet)
    frame = stream.read_scores(scored.output, columns=["id", "label", "score"])
    summary["validation_detector"] = report("validation_detector", frame["id"], frame["score"], frame["label"], out,
                                            detector.thresholds.ai)
    if args.test:
        summary["test_detector"] = score_test(detector, args, out)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def write_split(labels: pd.DataFrame, parts: RunRows, path: Path) -> None:
    """Each row's ``id``, ``label`` and part (``train`` / ``tuning`` / ``validation``), so which rows
    served what can be checked after the run."""
    frame = pd.DataFrame({"row": np.arange(len(labels)), "id": labels["id"].to_numpy(), "label": labels["label"].to_numpy(),
                          "part": parts.roles(len(labels))})
    frame.to_csv(path, index=False)


def score_test(detector, args, out: Path) -> dict:
    """The test split scored into Parquet, then the seed's table if it has labels, else the submission."""
    from aiornot.io import stream

    scored = stream.score_table(stream.open_table(args.test), detector, out / "scores_test", batch_size=args.batch_size,
                                progress=not args.quiet)
    frame = stream.read_scores(scored.output, columns=["id", "label", "score"])
    return report("test", frame["id"], frame["score"], frame["label"], out, detector.thresholds.ai)


def _default_encoder():
    from aiornot.model import encoders

    return encoders.open_encoder()
