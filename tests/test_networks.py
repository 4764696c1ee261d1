"""The two CNNs (aiornot.model.networks): the seed's layer table, the small fully convolutional detector.

Both under the JAX backend: test_jax_backend.py.
"""

from __future__ import annotations

import pytest

from aiornot.model import networks

# The seed's model-summary table: (layer class, output shape without batch, parameters).
SEED_TABLE = [
    ("Conv2D", (256, 256, 32), 896), ("Conv2D", (256, 256, 32), 9216), ("BatchNormalization", (256, 256, 32), 128),
    ("ReLU", (256, 256, 32), 0), ("MaxPooling2D", (128, 128, 32), 0), ("Dropout", (128, 128, 32), 0),
    ("Conv2D", (128, 128, 64), 18432), ("BatchNormalization", (128, 128, 64), 256), ("ReLU", (128, 128, 64), 0),
    ("Conv2D", (128, 128, 64), 36864), ("BatchNormalization", (128, 128, 64), 256), ("ReLU", (128, 128, 64), 0),
    ("MaxPooling2D", (64, 64, 64), 0), ("Dropout", (64, 64, 64), 0),
    ("Conv2D", (64, 64, 128), 73728), ("BatchNormalization", (64, 64, 128), 512), ("ReLU", (64, 64, 128), 0),
    ("Conv2D", (64, 64, 128), 147456), ("BatchNormalization", (64, 64, 128), 512), ("ReLU", (64, 64, 128), 0),
    ("MaxPooling2D", (32, 32, 128), 0), ("Dropout", (32, 32, 128), 0),
    ("Flatten", (131072,), 0), ("Dense", (256,), 33554432), ("BatchNormalization", (256,), 1024), ("ReLU", (256,), 0),
    ("Dropout", (256,), 0), ("Reshape", (1, 256), 0),
    ("Conv1D", (1, 512), 655872), ("MaxPooling1D", (1, 512), 0), ("Conv1D", (1, 512), 1311232), ("MaxPooling1D", (1, 512), 0),
    ("Conv1D", (1, 1024), 1573888), ("Flatten", (1024,), 0), ("Dense", (1,), 1025),
]


def test_seed_cnn_matches_the_seed_summary_layer_by_layer():
    model = networks.seed_cnn()
    rows = [(cls, shape[1:], params) for _, cls, shape, params in networks.summary_rows(model) if cls != "InputLayer"]
    assert rows == SEED_TABLE
    assert model.count_params() == 37_385_729


def test_detector_is_small_fully_convolutional_and_outputs_a_logit():
    import numpy as np

    model = networks.forensic_detector()
    assert model.count_params() < 2_000_000
    for size in (64, 96):
        output = model.predict(np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32"), verbose=0)
        assert output.shape == (2, 1)
    highpass = model.get_layer("highpass").get_weights()[0]
    assert highpass.shape == (3, 3, 3, 3) and abs(highpass.sum(axis=(0, 1))).max() < 1e-6  # residual filters sum to zero
    assert not model.get_layer("highpass").trainable


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        networks.build("resnet")


