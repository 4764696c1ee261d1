"""The leave-out protocol's bookkeeping (aiornot.evaluation.protocol): which groups are held out, what a fold trains and
tests on, the headline, and the backbone comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiornot.evaluation import protocol
from conftest import FakeEncoder


def protocol_frame() -> pd.DataFrame:
    rows = []
    for i in range(12):
        rows.append({"label": 1, "generator": "flux", "collection": "comfy-a", "source": f"flux/{i}", "split": ["train", "validation", "test"][i % 3]})
    for i in range(9):
        rows.append({"label": 1, "generator": "stylegan2", "collection": "avatars", "source": f"sg/{i}", "split": ["train", "validation", "test"][i % 3]})
    for i in range(3):
        rows.append({"label": 1, "generator": "sdxl", "collection": "comfy-a", "source": f"sdxl/{i}", "split": "train"})
    for i in range(10):
        rows.append({"label": 0, "generator": "camera", "collection": "stock", "source": f"stock/{i}", "split": ["train", "validation", "test"][i % 3]})
    for i in range(10):
        rows.append({"label": 0, "generator": "camera", "collection": "debian", "source": f"deb/{i}", "split": ["train", "validation", "test"][i % 3]})
    return pd.DataFrame(rows)


def test_held_out_groups_name_generators_and_packages_with_enough_images():
    groups = {g.name: g for g in protocol.held_out_groups(protocol_frame(), min_images=8, min_real_images=8,
                                                          kinds=("generator", "package"))}
    # avatars holds exactly the stylegan2 rows: listed once, under the generator.
    assert set(groups) == {"generator: flux", "generator: stylegan2", "package: comfy-a", "package: stock", "package: debian"}
    assert groups["generator: flux"].size == 12 and groups["package: comfy-a"].size == 15
    assert groups["package: stock"].label == 0


def test_packages_with_a_shared_prefix_are_held_out_together():
    frame = protocol_frame()
    frame.loc[frame["collection"] == "stock", "collection"] = ["stock-a", "stock-b"] * 5
    groups = {g.name: g.size for g in protocol.held_out_groups(frame, min_images=8, min_real_images=8, kinds=("package",))}
    assert groups["package: stock-*"] == 10 and "package: stock-a" not in groups


def test_a_whole_generator_family_can_be_held_out():
    frame = protocol_frame().assign(family=lambda f: np.where(f["generator"] == "stylegan2", "gan", np.where(f["label"] == 1, "diffusion", "camera")))
    families = {g.name: g.size for g in protocol.held_out_groups(frame, min_images=8) if g.kind == "family"}
    assert families == {"family: diffusion": 15, "family: gan": 9}


def test_a_fold_never_trains_on_what_it_tests():
    frame = protocol_frame()
    for held in protocol.held_out_groups(frame, min_images=8):
        rows = protocol.fold_rows(frame, held)
        assert not (rows["train"] & held.rows).any() and not (rows["validation"] & held.rows).any()
        assert (rows["test"] & held.rows).sum() == held.size  # the whole group is tested, from every split
        other = rows["test"] & ~held.rows
        assert (frame.loc[other, "label"] != held.label).all() and (frame.loc[other, "split"] == "test").all()
        assert not (rows["train"] & rows["test"]).any()


def test_a_fold_leaves_out_the_fakes_made_from_the_photos_it_holds_out():
    frame = protocol_frame()
    # Real-ESRGAN re-renderings of three stock photos: AI rows of another package, but the photos' own source groups.
    made = frame[frame["collection"] == "stock"].head(3).assign(label=1, generator="realesrgan", collection="upscaled")
    frame = pd.concat([frame, made], ignore_index=True)
    pair = protocol.HeldOut("pair: avatars + stock", "curation pair", -1, frame["collection"].isin(["avatars", "stock"]).to_numpy())
    rows = protocol.fold_rows(frame, pair)
    remade = (frame["collection"] == "upscaled").to_numpy()
    assert not (rows["train"] & remade).any() and not (rows["validation"] & remade).any()
    # Re-renderings of photos the fold keeps still train it.
    other = protocol.HeldOut("package: debian", "package", 0, (frame["collection"] == "debian").to_numpy())
    assert (protocol.fold_rows(frame, other)["train"] & remade).any()


def test_headline_means_the_modern_generators_only():
    table = pd.DataFrame([
        {"held out": "generator: flux", "kind": "generator", "class": "AI", "view": "re-encoded", "ROC AUC": 0.9, "flagged ai": 0.5,
         "TPR @ 5% FPR": 0.4},
        {"held out": "generator: sdxl", "kind": "generator", "class": "AI", "view": "re-encoded", "ROC AUC": 0.7, "flagged ai": 0.3,
         "TPR @ 5% FPR": 0.2},
        {"held out": "generator: stylegan2", "kind": "generator", "class": "AI", "view": "re-encoded", "ROC AUC": 0.99, "flagged ai": 0.9,
         "TPR @ 5% FPR": 0.85},
        {"held out": "generator: flux", "kind": "generator", "class": "AI", "view": "raw", "ROC AUC": 0.1, "flagged ai": 0.0,
         "TPR @ 5% FPR": 0.0},
        {"held out": "package: stock", "kind": "package", "class": "real", "view": "re-encoded", "ROC AUC": 0.8, "flagged ai": 0.12,
         "flagged low": 0.05, "flagged high": 0.2, "TPR @ 5% FPR": 0.3},
    ])
    summary = protocol.headline(table, modern_family_generators=["flux", "sdxl"])
    assert summary["modern_mean_auc"] == pytest.approx(0.8) and summary["modern_min_auc"] == pytest.approx(0.7)
    assert summary["stylegan2_tpr_at_5pct_fpr"] == pytest.approx(0.85)
    assert summary["real_packages_flagged"] == {"package: stock": [0.12, 0.05, 0.2]}


def test_backbone_comparison_encodes_each_image_once_and_refits_the_head_per_fold():
    frame = protocol_frame()
    frame["family"] = np.where(frame["label"] == 1, "diffusion", "camera")
    rng = np.random.default_rng(3)
    # Pictures whose mean brightness carries the label: a head on FakeEncoder's channel means can learn it.
    images = [np.clip(rng.normal(60 + 120 * label, 20, (16, 16, 3)), 0, 255).astype(np.uint8) for label in frame["label"]]
    reencoded = [np.ascontiguousarray(p[::-1]) for p in images]  # another picture, so the store keys differ
    groups = protocol.held_out_groups(frame, min_images=8, min_real_images=8, kinds=("generator",))
    from aiornot.training.train import DetectorRecipe

    recipe = DetectorRecipe()
    encoder = FakeEncoder()
    table = protocol.compare_backbones(frame, images, reencoded, groups, recipe, [protocol.Backbone("fake", encoder)], rounds=20,
                                       progress=False)
    assert encoder.seen == 2 * len(frame)  # every picture once per view, not once per fold
    assert len(table) == 2 * len(groups) and set(table["view"]) == {"raw", "re-encoded"}
    assert (table["ROC AUC"] > 0.9).all()  # brightness separates the classes in every fold
    summary = protocol.backbone_summary(table, modern_family_generators=["flux", "sdxl"])
    assert list(summary.columns) == ["fake (embeds)"]
    assert summary.loc["modern generators: mean AUC", "fake (embeds)"] > 0.9


def test_a_dataset_that_names_nothing_to_hold_out_gives_an_empty_protocol_not_a_crash():
    frame = pd.DataFrame({"label": [0] * 10 + [1] * 10})  # a plain real/ and ai/ folder: no generator, no package
    assert protocol.held_out_groups(frame) == []
    images = [np.zeros((16, 16, 3), np.uint8)] * len(frame)
    table = protocol.run(frame, images, images, [], recipe=None, progress=False)
    assert table.empty and {"held out", "view", "ROC AUC", "flagged ai"} <= set(table.columns)
    summary = protocol.headline(table)
    assert summary["folds"] == 0 and summary["cross_curation_mean_auc"] is None and summary["unseen_real_flagged"] == {}
    encoder = FakeEncoder()
    backbones = protocol.compare_backbones(frame, images, images, [], None, [protocol.Backbone("fake", encoder)], progress=False)
    assert backbones.empty and encoder.seen == 0  # no fold: nothing encoded
    assert protocol.backbone_summary(backbones).empty


def test_the_backbone_comparison_trains_on_the_low_resolution_views_when_the_recipe_does():
    frame = protocol_frame()
    rng = np.random.default_rng(3)
    images = [np.clip(rng.normal(60 + 120 * label, 20, (16, 16, 3)), 0, 255).astype(np.uint8) for label in frame["label"]]
    reencoded = [np.ascontiguousarray(p[::-1]) for p in images]
    groups = protocol.held_out_groups(frame, min_images=8, min_real_images=8, kinds=("generator",))
    from aiornot.training.train import DetectorRecipe

    encoder = FakeEncoder()
    table = protocol.compare_backbones(frame, images, reencoded, groups, DetectorRecipe(lowres_views=True),
                                       [protocol.Backbone("fake", encoder)], rounds=20, progress=False)
    assert encoder.seen == 3 * len(frame)  # raw, re-encoded and low-resolution, each once
    assert len(table) == 2 * len(groups) and set(table["view"]) == {"raw", "re-encoded"}  # only the scored views are reported
    assert (table["ROC AUC"] > 0.9).all()
