"""The two networks: the seed study's CNN, reproduced exactly, and our compact forensic detector.

Both are Keras 3 functional models built from ``keras.layers`` and ``keras.ops`` only (no
``tf.*``), so they run under the TensorFlow and the JAX backends alike.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers

SEED_IMAGE_SIZE = 256


def seed_cnn(image_size: int = SEED_IMAGE_SIZE) -> keras.Model:
    """The seed study's hand-built CNN, layer by layer as its model summary lists them.

    256×256×3 input, 37,385,729 parameters: three convolution blocks (32, 64, 128 filters), a
    256-unit dense layer reshaped into a length-1 sequence for three Conv1D layers, and a sigmoid
    output. Inputs are RGB scaled to [0, 1] by the data pipeline, as in the seed (its table has
    no rescaling layer), and the whole image is resized to ``image_size`` first.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Conv2D(32, 3, padding="same", name="conv2d")(inputs)
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, name="conv2d_1")(x)
    x = layers.BatchNormalization(name="batch_normalization")(x)
    x = layers.ReLU(name="re_lu")(x)
    x = layers.MaxPooling2D(name="max_pooling2d")(x)
    x = layers.Dropout(0.25, name="dropout")(x)
    for index, filters in ((1, 64), (2, 128)):
        x = _seed_block(x, filters, index)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(name="batch_normalization_5")(x)
    x = layers.ReLU(name="re_lu_5")(x)
    x = layers.Dropout(0.5, name="dropout_3")(x)
    x = layers.Reshape((1, 256), name="reshape")(x)
    x = layers.Conv1D(512, 5, padding="same", activation="relu", name="conv1d")(x)
    x = layers.MaxPooling1D(padding="same", name="max_pooling1d")(x)
    x = layers.Conv1D(512, 5, padding="same", activation="relu", name="conv1d_1")(x)
    x = layers.MaxPooling1D(padding="same", name="max_pooling1d_1")(x)
    x = layers.Conv1D(1024, 3, padding="same", activation="relu", name="conv1d_2")(x)
    x = layers.Flatten(name="flatten_1")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="dense_1")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def _seed_block(x: keras.KerasTensor, filters: int, index: int) -> keras.KerasTensor:
    # Layer names follow Keras' automatic numbering in the seed's summary table.
    for repeat in range(2):
        number = 2 * index + repeat - 1
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv2d_{number + 1}")(x)
        x = layers.BatchNormalization(name=f"batch_normalization_{number}")(x)
        x = layers.ReLU(name=f"re_lu_{number}")(x)
    x = layers.MaxPooling2D(name=f"max_pooling2d_{index}")(x)
    return layers.Dropout(0.25, name=f"dropout_{index}")(x)


# ------------------------------------------------------------------------------ our detector
def highpass_kernels() -> np.ndarray:
    """Fixed residual filters (3×3): first-order, second-order and a 'square' second-order.

    They suppress the picture's content and keep the pixel-level noise in which camera
    pipelines and generators differ (the idea behind SRM residuals in image forensics).
    Returned as a depthwise kernel of shape (3, 3, 3 channels, 3 filters per channel).
    """
    first = np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], dtype=np.float32)
    second = np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], dtype=np.float32) / 2.0
    square = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float32) / 4.0
    filters = np.stack([first, second, square], axis=-1)  # (3, 3, 3 filters)
    return np.repeat(filters[:, :, None, :], 3, axis=2)  # one set per RGB channel


def forensic_detector(
    *,
    widths: tuple[int, ...] = (32, 64, 128, 192),
    stem_width: int = 24,
    highpass: bool = True,
    dropout: float = 0.3,
) -> keras.Model:
    """Our compact forensic CNN: fully convolutional, scores one crop, outputs a logit.

    Design (each choice is measured in notebooks 02/03 and ``make bench``):

    * no resizing before the network — it sees native-resolution crops, where generator
      up-sampling and camera demosaicing leave their traces;
    * a fixed high-pass residual stem (:func:`highpass_kernels`) beside the RGB input, computed
      at full resolution before anything is down-sampled;
    * a stride-2 first convolution, then one 3×3 convolution per block: plain convolutions run
      much faster than separable ones on CPU for the same accuracy at this size;
    * global average + max pooling, so any crop size works and a local trace can decide.

    The output is a **logit** (not a probability): calibration maps it to P(AI) later.
    """
    inputs = keras.Input((None, None, 3), name="crop")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
    if highpass:
        residual = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=3, use_bias=False, trainable=False, name="highpass")(x)
        residual = layers.Rescaling(4.0, name="residual_gain")(residual)
        x = layers.Concatenate(name="rgb_and_residuals")([x, residual])
    x = layers.Conv2D(stem_width, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for index, width in enumerate(widths):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{index}_conv")(x)
        x = layers.BatchNormalization(name=f"block{index}_bn")(x)
        x = layers.ReLU(name=f"block{index}_relu")(x)
        x = layers.MaxPooling2D(name=f"block{index}_pool")(x)
    average = layers.GlobalAveragePooling2D(name="average_pool")(x)
    maximum = layers.GlobalMaxPooling2D(name="max_pool")(x)
    x = layers.Concatenate(name="pooled")([average, maximum])
    x = layers.Dropout(dropout, name="dropout")(x)
    logit = layers.Dense(1, name="logit")(x)
    model = keras.Model(inputs, logit, name="forensic_detector")
    if highpass:
        model.get_layer("highpass").set_weights([highpass_kernels()])
    return model


MODEL_BUILDERS = {"seed_cnn": seed_cnn, "forensic_detector": forensic_detector}


def build(name: str, **options: object) -> keras.Model:
    """Build a model by name (``seed_cnn`` or ``forensic_detector``)."""
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](**options)  # type: ignore[operator]


def summary_rows(model: keras.Model) -> list[tuple[str, str, tuple, int]]:
    """``(layer name, layer class, output shape, parameter count)`` for each layer, as in a summary."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    return rows
