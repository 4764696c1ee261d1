"""An optional TFLite runtime for the detector's network: `make bench` measured it faster than
Keras on CPU (see reports/benchmark.json). The model code stays backend-neutral; only this module
uses TensorFlow, and everything falls back to Keras where TensorFlow or the file is missing.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

TFLITE_NAME = "model.tflite"


def export(model: Any, path: str | Path) -> Path:
    """Convert a Keras model to a TFLite flatbuffer at ``path`` (needs the TensorFlow backend)."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        plain = keras.Model(model.inputs, model.outputs)
        plain.export(folder, format="tf_saved_model", verbose=False)
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(folder).convert()
    target = Path(path)
    target.write_bytes(flatbuffer)
    return target


class TFLiteNetwork:
    """Runs a ``model.tflite`` on batches of crops; one interpreter per thread (they are not thread-safe).

    ``threads``: CPU threads each interpreter may use; default all the CPUs this process may run on.
    (TFLite's own default is one thread, which made it slower than Keras on large batches.)
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.content = Path(path).read_bytes()
        self.threads = max(1, int(threads)) if threads else usable_cpus()
        self.local = threading.local()

    def _interpreter(self):
        if not hasattr(self.local, "interpreter"):
            import tensorflow as tf

            with warnings.catch_warnings():
                # TF 2.20+ warns that tf.lite moves to LiteRT; the interpreter still works.
                warnings.simplefilter("ignore")
                self.local.interpreter = tf.lite.Interpreter(model_content=self.content, num_threads=self.threads)
            self.local.shape = None
        return self.local.interpreter

    def predict_on_batch(self, crops: np.ndarray) -> np.ndarray:
        """Logits for a batch of crops, like ``keras.Model.predict_on_batch``."""
        interpreter = self._interpreter()
        source = interpreter.get_input_details()[0]["index"]
        if self.local.shape != crops.shape:
            interpreter.resize_tensor_input(source, crops.shape)
            interpreter.allocate_tensors()
            self.local.shape = crops.shape
        interpreter.set_tensor(source, np.ascontiguousarray(crops, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def usable_cpus() -> int:
    """CPUs this process may use (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def available() -> bool:
    """Whether TensorFlow (and so the TFLite interpreter) can be imported here."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True
