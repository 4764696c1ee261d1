"""What decides the verdict, fitted on sources the experts never saw (issue 17).

In-sample validation rewards shortcuts: a forensic CNN that had learnt "a GAN face from this
package" shone on validation images of the same packages, got the larger fusion weight, and was
below chance on an outside check; an ``ai`` threshold chosen on the same packages flagged most real
portraits from a new studio. So the calibration, the fusion weights and the thresholds are fitted
on **cross-fitted, leave-curation-out predictions** instead:

1. the training pool's images are grouped by *curation* (the source package; the stock-photo
   templates are one curation), and the curations dealt into ``k`` folds;
2. for each fold, every expert is refitted without it — and without anything sharing a photo's
   source group with it (a Real-ESRGAN fake made from one of its photos) — and scores it (raw and
   re-encoded views), so each image gets a score from experts that never saw its curation;
3. each expert is calibrated on those scores; an expert whose out-of-source ROC AUC (the median over
   the curation folds) is below ``fusion_min_auc`` gets fusion weight 0, and the rule says why; the
   fusion is fitted on the rest (none left: ``fusion_fallback`` decides alone);
4. the ``ai`` threshold lets at most ``target_fpr`` of the pool's real photos through *and* at
   most ``max_source_fpr`` of any one real curation's; the ``real`` threshold lets at most
   ``target_fnr`` of the AI images through, so a real ``inconclusive`` band lies between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from aiornot.contract.config import OutOfSourceConfig

#: Packages whose names share one of these prefixes are one curation (the six stock-photo templates).
MERGED_PREFIXES = ("stock-",)


def curations(frame: pd.DataFrame, column: str = "collection", merge_prefixes: Sequence[str] = MERGED_PREFIXES) -> np.ndarray:
    """The curation of each row: its source package, merged where two entries share one.

    Entries cut from the same registry package (``origin``: the ComfyUI edits beside the
    text-to-image stills of the same wheel) are one curation, named ``first+second``; so are
    packages sharing a prefix in ``merge_prefixes`` (the stock-photo templates: ``stock-*``).
    Without a package column every row is its own ``source`` (or one curation when that is absent too).
    """
    if column in frame and frame[column].notna().all():
        names = frame[column].astype(str).to_numpy()
    elif "source" in frame and frame["source"].notna().all():
        names = frame["source"].astype(str).to_numpy()
    else:
        return np.full(len(frame), "all", dtype=object)
    if column in frame and "origin" in frame and frame["origin"].notna().all():
        names = _merged_by_origin(names, frame["origin"].astype(str).str.rsplit("@", n=1).str[0].to_numpy())
    return np.array([next((f"{prefix}*" for prefix in merge_prefixes if name.startswith(prefix)), name) for name in names], dtype=object)


def _merged_by_origin(names: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """Entries whose images come from the same registry package, named together (``a+b``)."""
    entries: dict[str, set[str]] = {}
    for name, origin in zip(names, origins):
        entries.setdefault(origin, set()).add(name)
    joined = {name: "+".join(sorted(group)) for group in entries.values() for name in group}
    return np.array([joined[name] for name in names], dtype=object)


def curation_folds(names: np.ndarray, labels: np.ndarray, k: int) -> list[np.ndarray]:
    """Deal whole curations into ``k`` folds of similar size, each class spread over the folds.

    Returns one boolean mask per fold (the rows it holds out). Deterministic: curations are dealt
    largest first, each to the fold that holds fewest images of its class so far (ties: lowest
    index). A class that comes from one curation only cannot be held out by curation: its images
    are dealt into the folds one by one (in-curation for that class, the best such data allow).
    """
    names, labels = np.asarray(names, dtype=object).copy(), np.asarray(labels)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(set(names[rows])) < 2:
            names[rows] = [f"{names[row]}#{position % k}" for position, row in enumerate(rows)]
    counts = pd.DataFrame({"name": names, "label": labels}).groupby("name")["label"].agg(["size", "mean"])
    counts["label"] = (counts["mean"] >= 0.5).astype(int)
    load = np.zeros((k, 2))
    assigned: dict[str, int] = {}
    ordered = counts.sort_values(["size"], ascending=False, kind="stable")
    for name, size, label in zip(ordered.index, ordered["size"].astype(int), ordered["label"].astype(int)):
        fold = int(np.argmin(load[:, label] + 1e-6 * load.sum(axis=1)))
        assigned[name] = fold
        load[fold, label] += size
    folds = [np.isin(names, [n for n, f in assigned.items() if f == fold]) for fold in range(k)]
    return [mask for mask in folds if mask.any()]


def fold_training_masks(folds: Sequence[np.ndarray], groups: np.ndarray | None) -> list[np.ndarray]:
    """The rows each cross-fitting fold may train on: not in the fold, and sharing no source group with it.

    ``groups``: each row's source group (the photo it shows or was made from); None: the fold alone is left out.
    """
    if groups is None:
        return [~held for held in folds]
    groups = np.asarray(groups, dtype=object)
    return [~held & ~np.isin(groups, groups[held]) for held in folds]


@dataclass
class OutOfSourceScores:
    """Each expert's uncalibrated logit for every view of the pool, from experts fitted without its curation."""

    logits: dict[str, np.ndarray]
    labels: np.ndarray
    curations: np.ndarray
    folds: int
    #: The views each cross-fitting fold held out (None: dealt again from the views' curations).
    view_folds: list[np.ndarray] | None = None

    def fold_masks(self) -> list[np.ndarray]:
        """The curation folds' views: those the cross-fitting used, else the same dealing over the views."""
        return self.view_folds if self.view_folds is not None else curation_folds(self.curations, self.labels, self.folds)

    def fold_aucs(self, expert: str) -> list[float]:
        """ROC AUC of ``expert`` within each curation fold (NaN where a fold lacks a class)."""
        from aiornot.evaluation.metrics import roc_auc

        return [float(roc_auc(self.labels[mask], self.logits[expert][mask])) for mask in self.fold_masks()]

    def pooled_auc(self, expert: str) -> float:
        from aiornot.evaluation.metrics import roc_auc

        return float(roc_auc(self.labels, self.logits[expert]))

    def auc(self, expert: str, fold_aucs: Sequence[float] | None = None) -> float:
        """The AUC an expert is admitted on: the median over the curation folds (``fold_aucs`` when already computed).

        Not the pooled AUC: one fold where an expert runs the wrong way (the semantic head on GAN faces
        against real faces: 0.02–0.43 measured) dragged the pooled figure under the bar, and a leave-out
        fold that moved one curation flipped the expert in or out (issue 17, session 24's note).
        """
        per_fold = [value for value in (self.fold_aucs(expert) if fold_aucs is None else fold_aucs) if np.isfinite(value)]
        return float(np.median(per_fold)) if per_fold else self.pooled_auc(expert)


def semantic_logits(features: np.ndarray, labels: np.ndarray, strata: np.ndarray, view_folds: list[np.ndarray], recipe: Any,
                    view_training: list[np.ndarray] | None = None) -> np.ndarray:
    """Cross-fitted semantic logits: the head refitted without each fold scores that fold (features given, one row per view).

    ``view_training``: the views each fold's head trains on (:func:`fold_training_masks`); None: every view outside the fold.
    """
    from aiornot.model.experts import fit_semantic_head

    logits = np.full(len(labels), np.nan)
    for held, trained in zip(view_folds, view_training or fold_training_masks(view_folds, None), strict=True):
        head = fit_semantic_head(features[trained], labels[trained], strata[trained], recipe)
        logits[held] = head.logits(features[held])
    return logits


def decide(detector: Any, scores: OutOfSourceScores, recipe: Any) -> OutOfSourceConfig:
    """Calibrate, fuse and set thresholds on ``detector`` from out-of-source scores (see the module docstring).

    Returns what they decided, as the model's config records it and the card shows it (ROC AUCs and shares to 4 places).
    """
    from aiornot.model.experts import Fusion, fit_fusion

    calibrations = {name: monotone_calibration(values, scores.labels) for name, values in scores.logits.items()}
    calibrated = {name: calibrations[name](values) for name, values in scores.logits.items()}
    fold_aucs = {name: scores.fold_aucs(name) for name in scores.logits}
    aucs = {name: scores.auc(name, fold_aucs[name]) for name in scores.logits}
    kept = [name for name in scores.logits if aucs[name] >= recipe.fusion_min_auc and name in recipe.fusion_experts]
    if not kept:  # nobody beats the bar: the fallback expert decides, and the card says it is below the bar
        kept = [fallback_expert(aucs, recipe)]
    experts = getattr(detector, "expert_names", None) or list(scores.logits)
    excluded = {name: exclusion_reason(name, aucs.get(name), recipe) for name in experts if name not in kept}
    fusion = fit_fusion({name: calibrated[name] for name in kept}, scores.labels)
    detector.fusion = Fusion(weights={**fusion.weights, **{name: 0.0 for name in excluded}}, intercept=fusion.intercept,
                             fitted_on=fusion.fitted_on, basis="out-of-source", excluded=excluded)
    detector.calibration = calibrations.get("forensic", detector.calibration)
    if detector.semantic and "semantic" in calibrations:
        detector.semantic.calibration = calibrations["semantic"]
    fused = detector.fusion({name: calibrated[name] for name in detector.fusion.weights if name in calibrated})
    detector.thresholds = choose_thresholds(fused, scores.labels, scores.curations, recipe)
    flagged = real_flagged_by_curation(fused, scores.labels, scores.curations, detector.thresholds.ai)
    return OutOfSourceConfig(expert_auc={name: round(auc, 4) for name, auc in aucs.items()},
                             expert_fold_auc={name: [round(v, 4) for v in values] for name, values in fold_aucs.items()},
                             expert_pooled_auc={name: round(scores.pooled_auc(name), 4) for name in scores.logits}, excluded=excluded,
                             predictions=len(scores.labels), folds=scores.folds,
                             real_flagged_by_curation={name: round(share, 4) for name, share in flagged.items()})


def fallback_expert(aucs: dict[str, float], recipe: Any) -> str:
    """The expert that decides alone when none reaches the bar: ``recipe.fusion_fallback`` when it was scored
    and the recipe lets it into the fusion, else the best of those the recipe lets in.

    Not "whichever scored higher": both experts then sit near chance, the margin is noise (0.544 against 0.549
    measured), and handing the verdict to the forensic CNN on such a margin cost a leave-out pair 0.80 → 0.36.
    The semantic expert is the one with the better leave-out record (model card: fused vs each expert alone).
    """
    allowed = {name: auc for name, auc in aucs.items() if name in recipe.fusion_experts} or aucs
    preferred = getattr(recipe, "fusion_fallback", None)
    return preferred if preferred in allowed else max(allowed, key=allowed.get)


def monotone_calibration(logits: np.ndarray, labels: np.ndarray):
    """Platt scaling that never reverses an expert: a negative slope becomes 0 (the base rate for every image).

    A negative slope out of source means that on curations it never saw, a higher logit went with
    *real* photos more often; read the other way round the score would mislead, so it says nothing.
    """
    from aiornot.model.experts import Calibration, fit_calibration, log_odds

    fitted = fit_calibration(logits, labels)
    if fitted.slope >= 0:
        return fitted
    return Calibration(slope=0.0, intercept=float(log_odds(np.array([np.mean(labels)]))[0]))


def exclusion_reason(name: str, auc: float | None, recipe: Any) -> str:
    if name not in recipe.fusion_experts or auc is None:
        return "left out of the fusion by the recipe"
    return f"out-of-source ROC AUC {auc:.2f} < {recipe.fusion_min_auc:.2f}"


def choose_thresholds(scores: np.ndarray, labels: np.ndarray, names: np.ndarray, recipe: Any):
    """The ``ai`` threshold at ``target_fpr`` over all real views and ``max_source_fpr`` within each real curation."""
    from aiornot.contract.scoring import Thresholds, threshold_at_fpr

    chosen = Thresholds.choose(scores, labels, recipe.target_fpr)
    ai = chosen.ai
    real = labels == 0
    for name in np.unique(names[real]):
        own = scores[real & (names == name)]
        if len(own) >= recipe.min_source_views and recipe.max_source_fpr < 1.0:
            ai = max(ai, threshold_at_fpr(own, recipe.max_source_fpr))
    ai = min(ai, 1.0)
    return chosen.model_copy(update={"ai": ai, "real": min(chosen.real, ai)})


def real_flagged_by_curation(scores: np.ndarray, labels: np.ndarray, names: np.ndarray, threshold: float) -> dict[str, float]:
    """Share of each real curation's views at or above ``threshold`` (out-of-source scores)."""
    real = labels == 0
    return {str(name): float(np.mean(scores[real & (names == name)] >= threshold)) for name in np.unique(names[real])}
