"""The evaluation notebook 03 stores with the model: the folds it runs, the variants it compares, and the
``evaluation`` section of ``detector.json`` built from the measured tables.

The model card and the README quote this section word for word (:mod:`aiornot.reporting.model_card`), so
its sentences — the comparison with the seed's CNN, the laundering drop — are written here once, from the
numbers, never typed into a notebook. The section is the JSON form of
:class:`~aiornot.contract.config.Evaluation` and is checked against it before it is stored.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pydantic import ValidationError

from aiornot.contract.config import Evaluation, ModelConfigError
from aiornot.contract.jsonsafe import json_safe
from aiornot.detector import Detector
from aiornot.evaluation import metrics
from aiornot.evaluation.protocol import HeldOut, fold_recipe
from aiornot.io import datasets

#: The order folds are taken in when only a few are run: one of each kind in turn, the headline pairs first.
FOLD_KINDS = (("curation pair", -1), ("family", 1), ("package", 0), ("generator", 1), ("package", 1))

#: The forensic expert's tiling policies compared in notebook 03 (the old 4 central crops, then tiles).
TILE_POLICIES = {"4 central crops": {"max_tiles": None, "crops_per_image": 4}, "up to 16 tiles": {"max_tiles": 16},
                 "up to 64 tiles": {"max_tiles": 64}}


def interleaved_folds(groups: Sequence[HeldOut], max_folds: int | None) -> list[HeldOut]:
    """At most ``max_folds`` of ``groups``, keeping the mix: pairs, families, real packages, generators and
    AI packages, in turn (``None`` or 0: every group, in its own order)."""
    if not max_folds:
        return list(groups)
    by_kind = [[g for g in groups if (g.kind, g.label) == key] for key in FOLD_KINDS]
    longest = max((len(kind) for kind in by_kind), default=0)
    turns = (kind[turn] for turn in range(longest) for kind in by_kind if turn < len(kind))
    return list(turns)[:max_folds]


def shipped_recipe(detector: Detector) -> Any:
    """The :class:`~aiornot.training.train.DetectorRecipe` the shipped detector was fitted with (from its config)."""
    return recipe_from_config(detector.config)


def recipe_from_config(config: dict[str, Any]) -> Any:
    """The :class:`~aiornot.training.train.DetectorRecipe` a ``detector.json`` records (its ``train_config`` and ``recipe``)."""
    from aiornot.training import train

    return train.DetectorRecipe(forensic=train.TrainConfig(**config["train_config"]), **config["recipe"])


def fused_experts(detector: Detector) -> tuple[str, ...]:
    """The experts the shipped model let into its fusion: those its rule weighs (fitted weights are never negative)."""
    return detector.fusion.used_experts


def protocol_fold_recipe(detector: Detector, *, epochs: int, steps_per_epoch: int | None) -> Any:
    """The recipe each leave-out fold is refitted with: the shipped one, with the experts the shipped model
    fused and the forensic CNN's (smaller, stated) budget."""
    recipe = fold_recipe(shipped_recipe(detector), epochs=epochs, steps_per_epoch=steps_per_epoch)
    return dataclasses.replace(recipe, fusion_experts=fused_experts(detector))


def forensic_variant(detector: Detector, **tiling: Any) -> Detector:
    """The detector's forensic expert alone (no semantic expert, no fusion), with its calibration and a
    different tiling policy (``max_tiles``, ``crops_per_image``): the same network, read another way."""
    variant = Detector(detector.model, {**detector.config, "semantic": None, "fusion": None, **tiling})
    variant.calibration = detector.calibration
    return variant


def tile_policy_table(detector: Detector, images: Any, labels: np.ndarray) -> pd.DataFrame:
    """ROC AUC, TPR at 5 % FPR and ECE of the forensic expert under each of :data:`TILE_POLICIES`."""
    rows = [{"policy": policy, **metrics.summary(labels, forensic_variant(detector, **tiling).scores(images))}
            for policy, tiling in TILE_POLICIES.items()]
    return pd.DataFrame(rows).set_index("policy")[["roc_auc", "tpr_at_fpr_0.05", "ece"]]


def comparison_text(labels: np.ndarray, ours: np.ndarray, seed_scores: np.ndarray, metric_tables: dict[str, pd.DataFrame], *,
                    groups: np.ndarray | None, rounds: int, seed: int) -> str:
    """The detector against the seed's CNN on ROC AUC and TPR at 5 % FPR, with the paired bootstrap
    interval of each difference and whether it excludes 0 — the sentence the card and README quote."""
    measures = (("ROC AUC", metrics.roc_auc), ("TPR @ 5% FPR", lambda y, s: metrics.tpr_at_fpr(y, s, 0.05)))
    detector_table, seed_table = metric_tables["detector"], metric_tables["seed_cnn"]

    def described(name: str, metric: Any) -> str:
        point, low, high = metrics.paired_difference(labels, ours, seed_scores, metric, groups=groups, rounds=rounds, seed=seed)
        supported = ("the interval excludes 0" if low > 0 or high < 0
                     else "the interval includes 0, so this sample cannot confirm the difference")
        return (f"{name} {detector_table.loc[name, 'value']:.3f} vs {seed_table.loc[name, 'value']:.3f} "
                f"({point:+.3f}, paired 95 % CI [{low:+.3f}, {high:+.3f}]; {supported})")

    differences = [described(name, metric) for name, metric in measures]
    return f"{differences[0]}; {differences[1]}; on {len(labels)} held-out images."


def laundering_text(laundered_table: pd.DataFrame, models: Sequence[str]) -> str:
    """Each model's ROC AUC on the original, laundered and re-encoded test split, in one sentence."""
    auc = lambda name, copy: laundered_table.loc[(name, copy), "roc_auc"]  # noqa: E731
    return "; ".join(f"{name}: ROC AUC {auc(name, 'original'):.3f} → {auc(name, 'laundered'):.3f} laundered, "
                     f"→ {auc(name, 're-encoded'):.3f} re-encoded" for name in models)


def real_portraits_flagged(test: pd.DataFrame, labels: np.ndarray, detector_scores: dict[str, np.ndarray], threshold: float, *,
                           groups: np.ndarray | None, rounds: int, seed: int) -> dict[str, Any]:
    """The share of the test split's real portraits the detector flags ``ai`` at ``threshold``, with its
    bootstrap interval, on the original and the re-encoded copy (``None`` without a real portrait)."""
    rows = (labels == 0) & (datasets.content_strata(test) == 1)
    flagged: dict[str, Any] = {}
    for copy in ("original", "re-encoded"):
        if not rows.any():
            flagged[copy] = None
            continue
        interval = metrics.bootstrap(labels[rows], detector_scores[copy][rows], lambda y, s: float(np.mean(s >= threshold)),
                                     groups=None if groups is None else groups[rows], rounds=rounds, seed=seed, both_classes=False)
        flagged[copy] = [round(v, 4) for v in interval]
    flagged["images"] = int(rows.sum())
    return flagged


def _rounded(table: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """A metric table (rows: metrics; columns: value, ci_low, ci_high) as JSON, to 4 decimals, NaN as None."""
    return {metric: {key: (None if pd.isna(value) else round(float(value), 4)) for key, value in row.items()}
            for metric, row in table.iterrows()}


def evaluation_section(*, test: pd.DataFrame, metric_tables: dict[str, pd.DataFrame], comparison: str, laundered: str,
                       warning: str | None, robustness: pd.DataFrame, scores: dict[str, np.ndarray], thresholds: dict[str, float],
                       fusion_rule: str | None, protocol_table: pd.DataFrame, protocol_summary: dict[str, Any],
                       fold_budget: dict[str, Any], real_portraits: dict[str, Any], backbone_summary: pd.DataFrame,
                       folds: int) -> dict[str, Any]:
    """``detector.json``'s ``evaluation`` section from notebook 03's measured tables.

    ``test`` is the held-out split (its ``label`` column), ``scores`` each model's P(AI) on it and
    ``thresholds`` each model's operating threshold; ``robustness`` is :func:`robustness.robustness`'s
    long table; ``protocol_table``/``protocol_summary`` and ``backbone_summary`` come from
    :mod:`aiornot.evaluation.protocol`. Raises :class:`ModelConfigError` if the section would not load.
    """
    labels = test["label"].to_numpy()
    section = {
        "test_images": int(len(test)), "test_real": int((labels == 0).sum()), "test_ai": int((labels == 1).sum()),
        "metrics": {name: _rounded(table) for name, table in metric_tables.items()},
        "comparison": comparison, "laundered": laundered, "warning": warning,
        "robustness": robustness.pivot(index="condition", columns="model", values="roc_auc").round(4).to_dict(),
        "per_generator": {name: metrics.per_group(test, values, "generator", thresholds[name]).round(4).to_dict(orient="records")
                          for name, values in scores.items()},
        "operating_thresholds": thresholds,
        "fusion": fusion_rule,
        "protocol": {"summary": protocol_summary, "fold_budget": fold_budget,
                     "rows": protocol_table.round(4).replace({np.nan: None}).to_dict(orient="records")},
        "real_portraits_flagged": real_portraits,
        "backbones": {"summary": {name: {key: (None if pd.isna(value) else round(float(value), 4)) for key, value in column.items()}
                                  for name, column in backbone_summary.items()},
                      "folds": folds},
    }
    check_section(section)
    return section


def check_section(section: dict[str, Any]) -> Evaluation:
    """``section`` as the typed :class:`Evaluation`, read back as ``detector.json`` will hold it (NumPy values
    as plain numbers); :class:`ModelConfigError` names the first bad key before anything is saved."""
    try:
        return Evaluation.model_validate(json.loads(json.dumps(json_safe(section))))
    except ValidationError as error:
        problem = error.errors()[0]
        key = ".".join(str(part) for part in problem["loc"])
        raise ModelConfigError(f"evaluation.{key}: {problem['msg']}") from None


def store_evaluation(detector: Detector, model_dir: str | Path, section: dict[str, Any], output_dir: str | Path) -> Path:
    """Store ``section`` in the model's ``detector.json`` (saving the detector) and as ``evaluation.json`` in
    ``output_dir``, so the model card quotes measured numbers rather than anyone typing them in."""
    detector.config["evaluation"] = section
    detector.save(model_dir)
    path = Path(output_dir) / "evaluation.json"
    path.write_text(json.dumps(section, indent=2, ensure_ascii=False))
    return path
