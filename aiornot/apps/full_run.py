"""The seed study at its real size, streamed: ``aiornot full-run DATA [--test TEST]`` (``make full-run``).

Reads the Hugging Face ``competitions/aiornot`` train split (or any layout :func:`aiornot.io.reader.open_table`
reads), and in bounded memory — pixels are decoded a batch at a time, never all at once:

1. splits it as the seed did, from the labels alone (18,618 → 13,032 / 5,586, class ratio kept), then
   carves a *tuning* part out of the seed's 13,032 training rows (``--tuning-fraction``, 15 %: stratified
   by label, grouped by ``source`` when the table has one, seeded) — see :func:`split_rows`;
2. trains the seed's CNN and our forensic CNN with :func:`aiornot.training.feed.fit_stream` on the training rows
   less the tuning rows, early-stopping on the tuning rows (any Keras backend: ``KERAS_BACKEND=jax``
   on a GPU; ``--mixed-precision`` for float16 compute there), with the shipped model's recipe
   (:func:`run_recipe`) and the run's options;
3. fits the semantic expert's head on frozen encoder features of those same training rows (and their
   re-encoded copies, made batch by batch), reading what the feature store already holds —
   ``aiornot ray-embed`` fills it on Ray Data — and computing the rest in batches;
4. calibrates both experts, fits the fusion rule and chooses thresholds on the tuning rows and their
   re-encoded copies, as notebook 02 does on its validation split without curations
   (:meth:`aiornot.detector.Detector.calibrate_from_logits` on each expert's logits, streamed batch by
   batch; ``--no-semantic``: forensic only);
5. scores the seed's 5,586 validation rows with both, streaming, and writes what notebook 03 writes for
   its held-out split (:func:`validation_report`): the seed's per-class table, the headline metrics with
   bootstrap intervals and the paired comparison of the detector with the seed's CNN; with ``--test``,
   scores the test split into Parquet and writes the seed's table if it has labels, else the
   competition's submission CSV and the reason no metric is shown (:mod:`aiornot.evaluation.testset`).

Why training alone has its own code path: :func:`aiornot.training.train.fit` (the notebooks') reads a
sequence of images in the training process and holds its early-stopping crops in memory;
:func:`~aiornot.training.feed.fit_stream` is the same model, losses and callbacks fed from the table by
Keras workers, a batch at a time. The cross-fitted, leave-curation-out calibration of notebook 02
(:mod:`aiornot.training.out_of_source`) is not run: the seed's data name no curations, and it would
retrain the forensic CNN once per fold at full size.

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
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aiornot.io.datasets import DatasetError

#: The saved detector's name (``detector.json``'s ``name``).
DETECTOR_NAME = "aiornot-full-run"
#: The seed CNN's learning rate, as notebook 02 trains it (Adam's default, as the seed used it).
SEED_LEARNING_RATE = 1e-3
#: Bootstrap rounds of the reported intervals, as the published notebook 03 runs them (reports/params/03_evaluation.yaml).
BOOTSTRAP_ROUNDS = 1000

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


def run_recipe(args: argparse.Namespace) -> Any:
    """The shipped model's :class:`~aiornot.training.train.DetectorRecipe` (as notebook 03 reads it from
    ``models/default/detector.json``), with what the options of ``aiornot full-run`` set: the forensic CNN's
    epochs, batch size and steps, and where given, the semantic head and the target FPR."""
    from aiornot.contract.config import ModelConfigError, load_config
    from aiornot.detector import CONFIG_NAME, model_directory
    from aiornot.evaluation.summary import recipe_from_config

    path = model_directory() / CONFIG_NAME
    _, shipped = load_config(path)
    if not shipped.get("train_config") or not shipped.get("recipe"):
        raise ModelConfigError(f"{path}: no train_config and recipe recorded, so the run has no recipe to follow; "
                               "retrain the shipped model with `make reports`")
    recipe = recipe_from_config(shipped)
    forensic = dataclasses.replace(recipe.forensic, model="forensic_detector", epochs=args.epochs, batch_size=args.batch_size,
                                   steps_per_epoch=args.steps_per_epoch)
    chosen = {"semantic_feature": args.semantic_feature, "semantic_C": args.semantic_C, "target_fpr": args.target_fpr}
    return dataclasses.replace(recipe, forensic=forensic, **{key: value for key, value in chosen.items() if value is not None})


def train_models(table, parts: RunRows, recipe, args) -> dict:
    """Both CNNs trained on the streamed training rows, early-stopped on the tuning rows (never the
    reported validation rows); saved with their curves under ``args.out``.

    The forensic CNN as ``recipe.forensic`` says; the seed's CNN with the same budget settings, its own
    epochs and learning rate, as notebook 02 trains it.
    """
    from aiornot.training import feed
    from aiornot.training.train import save_run

    seed_config = dataclasses.replace(recipe.forensic, model="seed_cnn", epochs=args.seed_epochs, learning_rate=SEED_LEARNING_RATE)
    runs = {}
    for config in (seed_config, recipe.forensic):
        result = feed.fit_stream(table, parts.train, parts.tuning, config, validation_steps=args.validation_steps,
                                 workers=args.workers, use_multiprocessing=args.multiprocessing, verbose=not args.quiet)
        save_run(result, args.out, name=config.model)
        runs[config.model] = result
    return runs


def semantic_expert(table, rows, args, encoder, recipe):
    """The semantic expert, its head fitted on the training rows' features, streamed batch by batch.

    Each batch is decoded, re-encoded where the recipe asks (:func:`aiornot.training.train.with_reencoded`)
    and embedded through the feature store (what is stored is read, the rest computed and stored);
    only the features are kept, never the pixels, then the head is fitted as the notebooks fit it
    (:func:`aiornot.model.experts.fit_semantic_head`). Returns (expert, summary figures).
    """
    from aiornot.io import stream
    from aiornot.model import encoders
    from aiornot.model.experts import SemanticExpert, fit_semantic_head
    from aiornot.training.train import semantic_training_views

    store = encoders.FeatureStore(Path(args.store) if args.store else encoders.FEATURE_STORE_DIR / encoder.id)
    features, labels, skipped = [], [], 0
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=not args.quiet,
                                       description="semantic features"):
        skipped += len(batch.skipped)
        if batch.images:
            views, view_labels = semantic_training_views(batch.images, batch.labels, recipe=recipe)
            features.append(encoders.embed_with_store(encoder, views, store, kind=recipe.semantic_feature, progress=False))
            labels.append(view_labels)
    if not features:
        raise DatasetError("no training image could be decoded: the semantic head has nothing to learn from")
    labels = np.concatenate(labels)
    head = fit_semantic_head(np.concatenate(features), labels, None, recipe)
    expert = SemanticExpert(head, feature=recipe.semantic_feature, encoder=encoder, store=store, encoder_id=encoder.id)
    return expert, {"views": len(labels), "skipped": skipped, "store": str(store.directory)}


def calibrated_detector(model, table, rows, args, *, recipe, semantic=None):
    """The forensic CNN (and ``semantic``) as a :class:`~aiornot.detector.Detector` with the recipe's tile
    policy, calibrated on ``rows`` (the tuning rows: calibration, fusion and thresholds must not see the
    rows that are reported) and, as the recipe says, their re-encoded copies.

    Each expert's logits (:meth:`~aiornot.detector.Detector.expert_logits`) are computed batch by batch;
    :meth:`~aiornot.detector.Detector.calibrate_from_logits` then fits what ``Detector.calibrate`` fits.
    """
    from aiornot.io import stream
    from aiornot.detector import Detector
    from aiornot.training.train import with_reencoded

    detector = Detector(model, {"name": DETECTOR_NAME, "crop_size": recipe.forensic.crop_size, "max_tiles": recipe.max_tiles})
    detector.semantic = semantic
    logits: dict[str, list[np.ndarray]] = {name: [] for name in detector.expert_names}
    labels = []
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=not args.quiet,
                                       description="tuning logits"):
        views, view_labels = with_reencoded(batch.images, batch.labels, enabled=recipe.reencoded_views)
        for name, values in detector.expert_logits(views).items():
            logits[name].append(values)
        labels.append(view_labels)
    detector.calibrate_from_logits({name: np.concatenate(parts) for name, parts in logits.items()}, np.concatenate(labels),
                                   target_fpr=recipe.target_fpr)
    return detector


def seed_scores(model, table, rows, args, *, image_size: int) -> np.ndarray:
    """The seed CNN's P(AI) per row (NaN where unreadable), streamed, scored as notebook 03 scores it
    (:class:`aiornot.evaluation.robustness.SeedScorer`: whole images resized to ``image_size``²)."""
    from aiornot.evaluation.robustness import SeedScorer
    from aiornot.io import stream

    scorer, scores = SeedScorer(model, image_size), np.full(len(rows), np.nan)
    position = {row: i for i, row in enumerate(rows)}
    for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=not args.quiet,
                                       description="seed CNN scores"):
        scores[[position[r] for r in batch.rows]] = scorer(batch.images)
    return scores


def validation_report(labels: pd.DataFrame, scores: dict[str, np.ndarray], thresholds: dict[str, float], out: Path, *,
                      seed: int) -> dict:
    """What notebook 03 measures on its held-out split, for each model (``seed_cnn``, ``detector``) on the
    reported rows (``labels``: their ``id``, ``label`` and, when known, ``source``; ``scores`` aligned).

    Writes the seed's per-class table (``table_validation_<model>.csv``, :mod:`aiornot.evaluation.testset`)
    and the headline metrics with bootstrap intervals (``metrics_validation_<model>.csv``, resampled by
    ``source`` when every row has one); returns :func:`aiornot.evaluation.metrics.summary`'s figures per
    model and :func:`aiornot.evaluation.summary.comparison_text`'s sentence. Each model is read at its
    operating threshold (``thresholds``); an unreadable image (NaN score) is counted in ``notes`` and left out.
    """
    from aiornot.evaluation import metrics, summary
    from aiornot.evaluation.testset import seed_test_report

    truth = labels["label"].to_numpy()
    groups = labels["source"].astype(str).to_numpy() if "source" in labels and labels["source"].notna().all() else None
    scored = np.logical_and.reduce([np.isfinite(values) for values in scores.values()])
    tables, figures = {}, {}
    for name, values in scores.items():
        key = f"validation_{name}"
        result = seed_test_report(labels["id"], values, truth, submission=out / f"submission_{key}.csv", threshold=thresholds[name])
        result.table.to_csv(out / f"table_{key}.csv")
        tables[name] = metrics.metrics_with_intervals(truth[scored], values[scored], threshold=thresholds[name], rounds=BOOTSTRAP_ROUNDS,
                                                      seed=seed, groups=None if groups is None else groups[scored])
        tables[name].to_csv(out / f"metrics_{key}.csv")
        measured = metrics.summary(truth[scored], values[scored], thresholds[name])
        figures[key] = {"images": result.n, "threshold": round(thresholds[name], 4),
                        **{metric: round(value, 4) for metric, value in measured.items()}, "notes": result.notes}
    figures["comparison"] = summary.comparison_text(truth[scored], scores["detector"][scored], scores["seed_cnn"][scored], tables,
                                                    groups=None if groups is None else groups[scored], rounds=BOOTSTRAP_ROUNDS, seed=seed)
    return figures


def run(args: argparse.Namespace, *, encoder: Any = None) -> dict:
    """The whole run; returns (and writes) the summary. ``args``: the options of ``aiornot full-run``.

    ``encoder``: the semantic expert's frozen encoder (default: the offline CLIP tower).
    """
    import keras

    from aiornot.evaluation.testset import SEED_THRESHOLD
    from aiornot.io import stream

    started, out = time.perf_counter(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    recipe = run_recipe(args)
    table = stream.open_table(args.data)
    unlabelled = int((~table.labels["label"].isin([0, 1])).sum())
    if unlabelled:
        raise DatasetError(f"{args.data}: {unlabelled} rows have no 0/1 label; full-run trains and reports on labelled data "
                           "(pass an unlabelled split as --test)")
    # The CLI leaves the default to this module (one place for the number; the parser does not import full_run).
    tuning = TUNING_FRACTION if args.tuning_fraction is None else args.tuning_fraction
    parts = split_rows(table.labels, tuning_fraction=tuning)
    write_split(table.labels, parts, out / "split.csv")
    summary = {"backend": keras.backend.backend(), "images": len(table), "split": parts.counts(), "split_roles": SPLIT_ROLES,
               "recipe": dataclasses.asdict(recipe)}
    runs = train_models(table, parts, recipe, args)
    semantic = None
    if not args.no_semantic:
        semantic, summary["semantic"] = semantic_expert(table, parts.train, args, encoder or _default_encoder(), recipe)
    detector = calibrated_detector(runs["forensic_detector"].model, table, parts.tuning, args, recipe=recipe, semantic=semantic)
    detector.save(out / "detector")
    summary["fusion"] = detector.fusion.rule
    # From here on, the seed's validation rows: nothing above (weights, early stopping, calibration, thresholds) saw them.
    reported = table.labels.iloc[parts.validation].reset_index(drop=True)
    scored = stream.score_table(table, detector, out / "scores_validation", rows=parts.validation, batch_size=args.batch_size,
                                progress=not args.quiet)
    detector_scores = stream.read_scores(scored.output, columns=["id", "score"]).set_index("id")["score"]
    scores = {"seed_cnn": seed_scores(runs["seed_cnn"].model, table, parts.validation, args, image_size=runs["seed_cnn"].config.image_size),
              "detector": detector_scores.reindex(reported["id"]).to_numpy(dtype=np.float64)}
    summary.update(validation_report(reported, scores, {"seed_cnn": SEED_THRESHOLD, "detector": detector.thresholds.ai}, out,
                                     seed=recipe.forensic.seed))
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
    """The test split scored into Parquet, then (:func:`aiornot.evaluation.testset.report_from_scores`) the seed's
    table and ROC AUC if it has labels, else the competition's submission and why no metric is shown."""
    from aiornot.evaluation.testset import report_from_scores
    from aiornot.io import stream

    scored = stream.score_table(stream.open_table(args.test), detector, out / "scores_test", batch_size=args.batch_size,
                                progress=not args.quiet)
    result = report_from_scores(scored.output, submission=out / "submission_test.csv", threshold=detector.thresholds.ai)
    if not result.labelled:
        return {"images": result.n, "submission": str(result.submission), "reason": result.reason, "notes": result.notes}
    result.table.to_csv(out / "table_test.csv")
    return {"images": result.n, "roc_auc": round(result.roc_auc, 4), "notes": result.notes,
            "accuracy": round(float(result.table.loc["accuracy", "f1-score"]), 4)}


def _default_encoder():
    from aiornot.model import encoders

    return encoders.open_encoder()
