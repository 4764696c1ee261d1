"""The measured-choices table (aiornot.training.ablation): the default detector's rows scored raw and re-encoded
with intervals by source, the variants in the order asked, and an unknown variant refused before anything runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiornot.evaluation import metrics
from aiornot.model import networks
from aiornot.training import ablation, train
from conftest import FakeEncoder, pictures

COLUMNS = ["AUC raw", "raw low", "raw high", "AUC re-encoded", "re-encoded low", "re-encoded high", "seconds"]


class MeanBrightness:
    """A stand-in detector: each expert's score is a fixed function of the image's mean pixel value."""

    def expert_scores(self, images):
        brightness = np.array([p.mean() / 255 for p in images])
        return {"semantic": brightness, "forensic": 1 - brightness}

    def fuse(self, scores):
        return (scores["semantic"] + scores["forensic"] ** 2) / 2


class Untouchable:
    """A detector that must not be asked anything."""

    def expert_scores(self, images):
        raise AssertionError("scored although a variant was unknown")


def split(count: int, seed: int, *, generators=None, groups=None) -> ablation.Split:
    images = pictures(count, shape=(48, 64, 3), seed=seed)
    labels = np.arange(count) % 2
    return ablation.Split(images, labels, np.zeros(count, int), generators, groups)


def forensic_run(seconds: float = 12.5) -> train.TrainResult:
    model = networks.forensic_detector(widths=(8, 16))
    return train.TrainResult(model, pd.DataFrame({"val_auc": [0.5]}), train.TrainConfig(crop_size=32), seconds, 10.0, 1)


def recipe() -> train.DetectorRecipe:
    return train.DetectorRecipe(forensic=train.TrainConfig(crop_size=32), max_tiles=8)


def test_the_default_rows_are_each_expert_bootstrapped_by_source_on_raw_and_reencoded_views() -> None:
    groups = np.repeat(["a", "b", "c", "d", "e"], 2)
    validation = split(10, seed=1, groups=groups)
    table = ablation.ablation_table(MeanBrightness(), forensic_run(), recipe(), split(6, seed=0), validation, rounds=50, seed=3)

    assert list(table.index) == [("default", "fused"), ("default", "semantic"), ("default", "forensic")]
    assert list(table.columns) == COLUMNS
    assert table["seconds"].isna().tolist() == [True, True, False] and table.loc[("default", "forensic"), "seconds"] == 12.5
    views, labels = train.with_reencoded(validation.images, validation.labels)
    semantic = MeanBrightness().expert_scores(views)["semantic"]
    for view, rows in (("raw", slice(0, 10)), ("re-encoded", slice(10, 20))):
        expected = metrics.bootstrap(labels[rows], semantic[rows], metrics.roc_auc, groups=groups, rounds=50, seed=3)
        measured = table.loc[("default", "semantic"), [f"AUC {view}", f"{view} low", f"{view} high"]].tolist()
        assert measured == pytest.approx(expected, nan_ok=True)


def test_variants_follow_in_the_order_asked_and_no_gan_faces_leaves_the_gan_faces_out() -> None:
    generators = np.array(["stylegan2", "flux", "dcgan", "flux", "real", "sdxl", "real", "flux"])
    training, validation = split(8, seed=0, generators=generators), split(4, seed=1)

    class CountingEncoder(FakeEncoder):
        """Records how many images each call embeds: a head's fit, then its validation views."""

        calls: list[int] = []

        def embed(self, images):
            self.calls.append(len(images))
            return super().embed(images)

    encoder = CountingEncoder()
    table = ablation.ablation_table(MeanBrightness(), forensic_run(), recipe(), training, validation,
                                    ["clip_embeds", "four_crops", "no_gan_faces"], encoder=encoder, rounds=20)

    assert list(table.index[3:]) == [("clip_embeds", "semantic"), ("four_crops", "forensic"), ("no_gan_faces", "semantic")]
    # Each training image and its re-encoded copy (6 without the GAN faces), then the 4 validation images and theirs.
    assert encoder.calls == [2 * 8, 2 * 4, 2 * 6, 2 * 4]
    assert table.loc[list(table.index[3:]), "seconds"].gt(0).all()
    assert table.loc[("four_crops", "forensic"), ["AUC raw", "AUC re-encoded"]].between(0, 1).all()


def test_an_unknown_variant_is_refused_before_anything_is_scored() -> None:
    with pytest.raises(ValueError, match=r"unknown ablation 'no_such_thing'; choose from \[.*'clip_cls'.*'four_crops'"):
        ablation.ablation_table(Untouchable(), forensic_run(), recipe(), split(4, seed=0), split(4, seed=1),
                                ["clip_cls", "no_such_thing"])


def test_leaving_out_generators_needs_the_generator_column() -> None:
    with pytest.raises(ValueError, match="no `generator` column"):
        ablation.ablation_table(MeanBrightness(), forensic_run(), recipe(), split(4, seed=0), split(4, seed=1),
                                ["no_gan_faces"], encoder=FakeEncoder(), rounds=5)


def test_a_split_from_its_rows_bootstraps_by_source_only_when_every_row_has_one() -> None:
    frame = pd.DataFrame({"label": [0, 1, 1], "generator": ["camera", "flux", "dcgan"], "source": ["s1", "s2", "s2"]})
    images = pictures(3)
    whole = ablation.Split.from_frame(frame, images, np.array([1, 0, 0]))
    assert whole.groups.tolist() == ["s1", "s2", "s2"] and whole.generators.tolist() == ["camera", "flux", "dcgan"]
    assert whole.labels.tolist() == [0, 1, 1] and whole.strata.tolist() == [1, 0, 0]
    assert ablation.Split.from_frame(frame.assign(source=["s1", None, "s2"]), images).groups is None
