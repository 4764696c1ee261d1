"""Leave-one-generator-out and leave-one-package-out: the project's stand-in for an unseen generator.

An in-sample test split says little about a generator the detector never saw: its images share
a curation, a size and a look with the training images. Here, for each held-out group — one
generator, or one whole source package (a curation such as one ComfyUI package or the InvokeAI
presets, or a whole real source such as stock portraits) — the **whole detector is refitted
without it** (forensic CNN, semantic head, calibration, fusion, thresholds) and tested on it:

* an AI group against the real photos of the test split (which no fold trains on);
* a real group against the AI images of the test split, where what matters is how many of the
  held-out real photos the stored threshold flags.

* **a cross-curation pair** — an AI package *and* a real package held out together, the detector
  trained without both and tested on them alone. Holding out one generator while its curation (the
  same thumbnails, the same real sources) stays in training predicted 0.96 where an outside check
  measured 0.63; a pair takes the curation away too, so it is the headline.

Both on the images as they are and on their re-encoded copies (centre square, 384 px, JPEG q90,
no metadata), which is what an outside check and most uploads see.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from aiornot.evaluation import metrics
from aiornot.training.out_of_source import MERGED_PREFIXES
from aiornot.io.lazy import take


@dataclass(frozen=True)
class HeldOut:
    """One group the detector is refitted without: every row where ``rows`` is true."""

    name: str
    kind: str  # "family", "generator", "package" or "curation pair"
    label: int  # 1: an AI group, 0: a real group, -1: a pair (an AI and a real package)
    rows: np.ndarray

    @property
    def size(self) -> int:
        return int(self.rows.sum())


#: What notebook 03 says when the data name nothing to hold out (a plain real/ and ai/ folder, say).
NO_FOLDS = ("**No leave-out fold:** the dataset names no AI generator, generator family or source package with enough "
            "images to hold out (manifest columns `generator`, `family`, `collection`; a subfolder of `ai/` names a "
            "generator). Without them the only figures below are the in-sample split's, which say nothing about "
            "generators or sources the detector never saw.")


def held_out_groups(frame: pd.DataFrame, *, min_images: int = 8, min_real_images: int = 20, package_column: str = "collection",
                    merge_prefixes: Sequence[str] = MERGED_PREFIXES,
                    kinds: Sequence[str] = ("family", "generator", "package", "curation pair")) -> list[HeldOut]:
    """Every AI generator family, AI generator and AI source package with at least ``min_images``
    images, and every real source package with at least ``min_real_images``.

    Packages whose names share a prefix in ``merge_prefixes`` are held out together (the six
    stock-photo templates are one curation: "stock-*"). A group that is the only source of its class
    is skipped (a fold would have no training images of that class), and a group with exactly the
    rows of an earlier one (a package that holds one generator) is listed once.
    """
    labels = frame["label"].to_numpy()
    candidates: list[HeldOut] = []

    def add(kind: str, name: str, label: int, rows: np.ndarray, least: int) -> None:
        if least <= rows.sum() < (labels == label).sum():
            candidates.append(HeldOut(f"{kind}: {name}", kind, label, rows))

    for kind, column in (("family", "family"), ("generator", "generator")):
        if kind in kinds and column in frame:
            values = frame[column].astype(str).to_numpy()
            for name in sorted(set(values[labels == 1])):
                add(kind, name, 1, (values == name) & (labels == 1), min_images)
    if "package" in kinds and package_column in frame:
        from aiornot.training.out_of_source import curations

        merged = curations(frame, package_column, merge_prefixes)  # stock-* as one, entries of one registry package as one
        for label, least in ((1, min_images), (0, min_real_images)):
            for name in sorted(set(merged[labels == label])):
                add("package", name, label, (merged == name) & (labels == label), least)
    if "curation pair" in kinds and package_column in frame:
        candidates.extend(curation_pairs(frame, min_images=min_images, min_real_images=min_real_images,
                                         package_column=package_column, merge_prefixes=merge_prefixes))
    groups, seen = [], set()
    for group in candidates:
        key = group.rows.tobytes()
        if key not in seen:
            seen.add(key)
            groups.append(group)
    return groups


def curation_pairs(frame: pd.DataFrame, *, min_images: int, min_real_images: int, package_column: str = "collection",
                   merge_prefixes: Sequence[str] = MERGED_PREFIXES) -> list[HeldOut]:
    """Cross-curation folds: each AI package paired with a real package, both held out together.

    Packages are paired by how much of them is portraits (most-portrait AI package with the
    most-portrait real package, and so on), so a pair cannot be told apart by "a face" alone; the
    longer list's leftover packages are paired again with the other list from its start.
    """
    from aiornot.io.datasets import content_strata
    from aiornot.training.out_of_source import curations

    labels, names = frame["label"].to_numpy(), curations(frame, package_column, merge_prefixes)
    portrait = content_strata(frame)

    def packages(label: int, least: int) -> list[str]:
        chosen = [n for n in set(names[labels == label]) if (names == n).sum() >= least and (names == n).sum() < (labels == label).sum()]
        return sorted(chosen, key=lambda n: (-portrait[names == n].mean(), n))

    ai, real = packages(1, min_images), packages(0, min_real_images)
    if not ai or not real:
        return []
    count = max(len(ai), len(real))
    return [HeldOut(f"pair: {ai[i % len(ai)]} + {real[i % len(real)]}", "curation pair", -1,
                    np.isin(names, [ai[i % len(ai)], real[i % len(real)]])) for i in range(count)]


def source_groups(frame: pd.DataFrame) -> np.ndarray | None:
    """Each row's source group (the photo it shows or was made from), or None when the frame has no ``source``."""
    return frame["source"].astype(str).to_numpy() if "source" in frame else None


def fold_rows(frame: pd.DataFrame, held: HeldOut) -> dict[str, np.ndarray]:
    """Which rows train, validate and test this fold (boolean masks over ``frame``).

    Nothing that shares a ``source`` group with a held-out row trains or validates the fold: a fake
    made from a real photo (a Real-ESRGAN re-rendering) has its photo's group, so holding out the
    photo's package also keeps its re-rendering out — no photo or person on both sides.
    """
    from aiornot.training.out_of_source import fold_training_masks

    split, labels = frame["split"].to_numpy(), frame["label"].to_numpy()
    [unseen] = fold_training_masks([held.rows], source_groups(frame))
    if held.label == -1:  # a pair holds out both classes: it is tested on itself alone
        return {"train": (split == "train") & unseen, "validation": (split == "validation") & unseen, "test": held.rows}
    return {
        "train": (split == "train") & unseen,
        "validation": (split == "validation") & unseen,
        # The held-out group from every split, against the other class's test images.
        "test": held.rows | ((split == "test") & (labels != held.label)),
    }


def run_fold(frame: pd.DataFrame, pixels: Sequence[np.ndarray], reencoded: Sequence[np.ndarray], held: HeldOut, recipe: Any,
             *, store: Any = None, encoder: Any = None, rounds: int = 200, seed: int = 42) -> list[dict[str, Any]]:
    """Refit the detector without ``held`` and measure it on ``held``: one row per view (raw, re-encoded)."""
    from aiornot.io import datasets
    from aiornot.training import train
    from aiornot.training.out_of_source import curations

    rows = fold_rows(frame, held)
    labels = frame["label"].to_numpy()
    strata = datasets.content_strata(frame)
    names = curations(frame)
    sources = source_groups(frame)
    # Views, not copies: with lazy images (aiornot.io.lazy) a fold decodes a batch at a time.
    detector, _ = train.fit_detector(take(pixels, rows["train"]), labels[rows["train"]], strata[rows["train"]],
                                     take(pixels, rows["validation"]), labels[rows["validation"]], recipe,
                                     store=store, encoder=encoder, verbose=False, name=f"without {held.name}",
                                     train_reencoded=take(reencoded, rows["train"]), val_reencoded=take(reencoded, rows["validation"]),
                                     train_curations=names[rows["train"]], val_curations=names[rows["validation"]],
                                     train_groups=sources[rows["train"]] if sources is not None else None,
                                     val_groups=sources[rows["validation"]] if sources is not None else None,
                                     val_strata=strata[rows["validation"]])
    test = np.flatnonzero(rows["test"])
    groups = sources[test] if sources is not None else None
    results = []
    for view, images in (("raw", pixels), ("re-encoded", reencoded)):
        experts = detector.expert_scores(take(images, test))
        scores = detector.fuse(experts)
        results.append(_fold_row(held, view, labels[test], scores, experts, strata[test], groups, detector.thresholds.ai, rounds, seed))
    return results


#: The columns every fold row has (:func:`_fold_row`; each expert adds its ``NAME AUC``), so a run without a
#: fold (a dataset that names no generator or package to hold out) is an empty table the summaries can read.
FOLD_COLUMNS = ("held out", "kind", "class", "view", "AI images", "real images", "ROC AUC", "AUC low", "AUC high",
                "TPR @ 5% FPR", "flagged ai", "flagged low", "flagged high", "real portraits flagged", "threshold")


def _fold_table(rows: list[dict[str, Any]], *leading: str) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*leading, *FOLD_COLUMNS])


def _fold_row(held: HeldOut, view: str, labels: np.ndarray, scores: np.ndarray, experts: dict[str, np.ndarray],
              portraits: np.ndarray, groups: np.ndarray | None, threshold: float, rounds: int, seed: int) -> dict[str, Any]:
    def flagged(y: np.ndarray, s: np.ndarray, label: int) -> float:
        chosen = s[y == label]
        return float(np.mean(chosen >= threshold)) if len(chosen) else float("nan")

    auc = metrics.bootstrap(labels, scores, metrics.roc_auc, groups=groups, rounds=rounds, seed=seed)
    # For a pair, "flagged ai" is the share of its held-out real package flagged (what accuses applicants).
    held_label = 0 if held.label == -1 else held.label
    share = metrics.bootstrap(labels, scores, lambda y, s: flagged(y, s, held_label), groups=groups, rounds=rounds, seed=seed)
    real = labels == 0
    row = {
        "held out": held.name, "kind": held.kind, "class": {1: "AI", 0: "real", -1: "pair"}[held.label], "view": view,
        "AI images": int((labels == 1).sum()), "real images": int(real.sum()),
        "ROC AUC": auc[0], "AUC low": auc[1], "AUC high": auc[2],
        "TPR @ 5% FPR": metrics.tpr_at_fpr(labels, scores, 0.05),
        # For an AI group: the share caught at the stored `ai` threshold; for a real group: the share wrongly flagged.
        "flagged ai": share[0], "flagged low": share[1], "flagged high": share[2],
        "real portraits flagged": float(np.mean(scores[real & (portraits == 1)] >= threshold)) if (real & (portraits == 1)).any() else float("nan"),
        "threshold": threshold,
    }
    for name, values in experts.items():
        row[f"{name} AUC"] = metrics.roc_auc(labels, values)
    return row


def run(frame: pd.DataFrame, pixels: Sequence[np.ndarray], reencoded: Sequence[np.ndarray], groups: Sequence[HeldOut], recipe: Any,
        *, store: Any = None, encoder: Any = None, rounds: int = 200, seed: int = 42, progress: bool = True) -> pd.DataFrame:
    """Every fold of the protocol, as one table (two rows per held-out group: raw and re-encoded)."""
    rows: list[dict[str, Any]] = []
    for held in tqdm(groups, desc="leave-out folds", unit="fold", disable=not progress):
        rows.extend(run_fold(frame, pixels, reencoded, held, recipe, store=store, encoder=encoder, rounds=rounds, seed=seed))
    return _fold_table(rows)


@dataclass(frozen=True)
class Backbone:
    """One frozen encoder and the feature kind the semantic head reads, for the backbone comparison."""

    name: str
    encoder: Any
    feature: str = "embeds"
    store: Any = None


def run_semantic_fold(frame: pd.DataFrame, features: dict[str, np.ndarray], held: HeldOut, recipe: Any, backbone: Backbone,
                      *, rounds: int = 200, seed: int = 42) -> list[dict[str, Any]]:
    """The semantic expert alone, its head refitted on ``backbone``'s features without ``held``: one row per view.

    ``features`` holds every image's features, ``{"raw": [N, D], "re-encoded": [N, D]}``, computed
    once per backbone: a fold costs a logistic regression, not an encoding pass. As in
    :func:`aiornot.training.train.fit_semantic`, the head also trains on the re-encoded views when the
    recipe says so, with (class, portrait) balanced weights; its calibration and `ai` threshold
    are then fitted out of source, on cross-fitted leave-curation-out logits of the fold's training
    and validation views (as :func:`aiornot.training.out_of_source.decide` does for the whole detector).
    """
    from aiornot.io import datasets
    from aiornot.model.experts import fit_semantic_head
    from aiornot.training.out_of_source import (choose_thresholds, curation_folds, curations, fold_training_masks,
                                                monotone_calibration, semantic_logits)

    rows = fold_rows(frame, held)
    labels, strata, names = frame["label"].to_numpy(), datasets.content_strata(frame), curations(frame)
    scored_views = ("raw", "re-encoded") if recipe.reencoded_views else ("raw",)
    # The low-resolution views train every head, as they train the shipped one, and are never scored.
    views = (*scored_views, "lowres") if recipe.lowres_views else scored_views

    def stacked(mask: np.ndarray) -> tuple[np.ndarray, ...]:
        return (np.concatenate([features[view][mask] for view in views]), np.tile(labels[mask], len(views)),
                np.tile(strata[mask], len(views)), np.tile(names[mask], len(views)))

    train_x, train_y, train_strata, _ = stacked(rows["train"])
    head = fit_semantic_head(train_x, train_y, train_strata, recipe)
    # Calibration and the `ai` threshold out of source, as the shipped detector's (aiornot.training.out_of_source).
    pool = rows["train"] | rows["validation"]
    pool_x, pool_y, pool_strata, pool_names = stacked(pool)
    scored = np.concatenate([np.full(int(pool.sum()), view in scored_views) for view in views])
    folds = curation_folds(names[pool], labels[pool], recipe.source_folds)
    sources = source_groups(frame)
    view_folds = [np.tile(mask, len(views)) & scored for mask in folds]
    view_training = [np.tile(mask, len(views)) for mask in fold_training_masks(folds, sources[pool] if sources is not None else None)]
    held_logits = semantic_logits(pool_x, pool_y, pool_strata, view_folds, recipe, view_training)[scored]
    calibration = monotone_calibration(held_logits, pool_y[scored])
    threshold = choose_thresholds(calibration(held_logits), pool_y[scored], pool_names[scored], recipe).ai
    test = rows["test"]
    groups = sources[test] if sources is not None else None
    results = []
    for view in ("raw", "re-encoded"):
        scores = calibration(head.logits(features[view][test]))
        row = _fold_row(held, view, labels[test], scores, {}, strata[test], groups, threshold, rounds, seed)
        results.append({"backbone": backbone.name, "feature": backbone.feature, **row})
    return results


def compare_backbones(frame: pd.DataFrame, pixels: Sequence[np.ndarray], reencoded: Sequence[np.ndarray], groups: Sequence[HeldOut],
                      recipe: Any, backbones: Sequence[Backbone], *, rounds: int = 200, seed: int = 42,
                      progress: bool = True) -> pd.DataFrame:
    """Every backbone through every fold (semantic expert alone): the protocol's backbone table.

    Each backbone encodes every image once, raw and re-encoded, and at low resolution when the recipe trains on that
    view (cached in its feature store).
    """
    from aiornot.io.lazy import mapped as lazy_mapped
    from aiornot.model.encoders import embed_with_store
    from aiornot.training.train import lowres_view

    rows: list[dict[str, Any]] = []
    for backbone in backbones if groups else ():  # no fold: nothing to encode for
        views = [("raw", pixels), ("re-encoded", reencoded)]
        if recipe.lowres_views:  # training material of every head (see run_semantic_fold)
            views.append(("lowres", lazy_mapped(pixels, lowres_view(recipe))))
        features = {view: embed_with_store(backbone.encoder, images, backbone.store, kind=backbone.feature, progress=progress,
                                           description=f"{backbone.name} features ({view})")
                    for view, images in views}
        for held in tqdm(groups, desc=f"{backbone.name} folds", unit="fold", disable=not progress):
            rows.extend(run_semantic_fold(frame, features, held, recipe, backbone, rounds=rounds, seed=seed))
    return _fold_table(rows, "backbone", "feature")


def backbone_summary(table: pd.DataFrame, *, modern_family_generators: Sequence[str] = ()) -> pd.DataFrame:
    """One line per backbone: :func:`headline`'s figures on the re-encoded view, side by side."""
    lines = {}
    for (name, feature), part in table.groupby(["backbone", "feature"], sort=False):
        summary = headline(part, modern_family_generators=modern_family_generators)
        real = summary["real_packages_flagged"]
        lines[f"{name} ({feature})"] = {
            "cross-curation pairs: mean AUC": summary["cross_curation_mean_auc"],
            "unseen real sources: mean flagged": summary["unseen_real_flagged_mean"],
            "unseen real sources: worst flagged": summary["unseen_real_flagged_max"],
            "modern generators: mean AUC": summary["modern_mean_auc"],
            "modern generators: mean flagged": summary["modern_mean_flagged"],
            **{f"family held out: {family} AUC": auc for family, auc in summary["families"].items()},
            "StyleGAN2 held out: TPR @ 5% FPR": summary.get("stylegan2_tpr_at_5pct_fpr"),
            "real packages held out: mean flagged": _rounded(np.mean([v[0] for v in real.values()])) if real else None,
            "real packages held out: worst flagged": _rounded(max(v[0] for v in real.values())) if real else None,
        }
    return pd.DataFrame(lines)


def headline(table: pd.DataFrame, *, modern_family_generators: Sequence[str] = ()) -> dict[str, Any]:
    """The protocol's summary on the re-encoded view: what the model card and README lead with."""
    reencoded = table[table["view"] == "re-encoded"]
    generator_rows = reencoded[(reencoded["kind"] == "generator")]
    modern = generator_rows[generator_rows["held out"].str.removeprefix("generator: ").isin(list(modern_family_generators))]
    real_packages = reencoded[(reencoded["class"] == "real")]
    summary = {
        "folds": int(reencoded.shape[0]),
        "modern_generators": int(len(modern)),
        "modern_mean_auc": _rounded(modern["ROC AUC"].mean()) if len(modern) else None,
        "modern_min_auc": _rounded(modern["ROC AUC"].min()) if len(modern) else None,
        "modern_mean_flagged": _rounded(modern["flagged ai"].mean()) if len(modern) else None,
        "real_packages_flagged": {r["held out"]: [_rounded(r["flagged ai"]), _rounded(r["flagged low"]), _rounded(r["flagged high"])]
                                  for _, r in real_packages.iterrows()},
    }
    pairs = reencoded[reencoded["kind"] == "curation pair"]
    summary["cross_curation_folds"] = int(len(pairs))
    summary["cross_curation_mean_auc"] = _rounded(pairs["ROC AUC"].mean()) if len(pairs) else None
    summary["cross_curation_min_auc"] = _rounded(pairs["ROC AUC"].min()) if len(pairs) else None
    summary["cross_curation_auc"] = {r["held out"].removeprefix("pair: "): _rounded(r["ROC AUC"]) for _, r in pairs.iterrows()}
    # Every real source the detector never saw, at the fold's shipped threshold: real-package folds and pairs' real halves.
    unseen_real = {**{r["held out"].removeprefix("package: "): r["flagged ai"] for _, r in real_packages.iterrows()},
                   **{f"{r['held out'].removeprefix('pair: ')} (real half)": r["flagged ai"] for _, r in pairs.iterrows()}}
    unseen_real = {name: value for name, value in unseen_real.items() if not pd.isna(value)}
    summary["unseen_real_flagged"] = {name: _rounded(value) for name, value in unseen_real.items()}
    summary["unseen_real_flagged_mean"] = _rounded(np.mean(list(unseen_real.values()))) if unseen_real else None
    summary["unseen_real_flagged_max"] = _rounded(max(unseen_real.values())) if unseen_real else None
    families = reencoded[reencoded["kind"] == "family"]
    summary["families"] = {r["held out"].removeprefix("family: "): _rounded(r["ROC AUC"]) for _, r in families.iterrows()}
    stylegan = reencoded[reencoded["held out"] == "generator: stylegan2"]
    if len(stylegan):
        summary["stylegan2_tpr_at_5pct_fpr"] = _rounded(stylegan["TPR @ 5% FPR"].iloc[0])
        summary["stylegan2_auc"] = _rounded(stylegan["ROC AUC"].iloc[0])
    return summary


def _rounded(value: float) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)


def fold_recipe(recipe: Any, *, epochs: int, steps_per_epoch: int | None) -> Any:
    """The recipe each fold is refitted with: the default one, with the forensic CNN's budget set."""
    forensic = dataclasses.replace(recipe.forensic, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return dataclasses.replace(recipe, forensic=forensic)
