"""A torch-free DCGAN generator: load a PyTorch checkpoint safely and generate faces with numpy.

The ``gan-face-generate`` package ships the weights of a DCGAN generator (the PyTorch tutorial
architecture, 64×64 RGB, trained on DigiFace-1M) as a PyTorch checkpoint. aiornot does not
depend on torch, and ``torch.load`` would unpickle arbitrary objects, so this module:

* reads the checkpoint zip (``<root>/data.pkl`` plus one raw little-endian file per storage) with
  a *restricted* unpickler that only knows the handful of globals a state dict needs and refuses
  everything else (:class:`CheckpointError`);
* re-implements the generator's forward pass (transposed convolutions, batch norm in eval mode,
  ReLU, tanh) in float64 numpy.

Architecture (``nz=100, ngf=64, nc=3``), from the package's ``models.py``::

    ConvT(100→512, k4, s1, p0) BN ReLU   →  4×4
    ConvT(512→256, k4, s2, p1) BN ReLU   →  8×8
    ConvT(256→128, k4, s2, p1) BN ReLU   → 16×16
    ConvT(128→64,  k4, s2, p1) BN ReLU   → 32×32
    ConvT(64→3,    k4, s2, p1) tanh      → 64×64

The weights are stored under ``main.<index>.<name>`` with the indices of that ``nn.Sequential``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# (sequential index of the ConvTranspose2d, its stride, padding, index of the BatchNorm or None)
_LAYERS: tuple[tuple[int, int, int, int | None], ...] = (
    (0, 1, 0, 1),
    (3, 2, 1, 4),
    (6, 2, 1, 7),
    (9, 2, 1, 10),
    (12, 2, 1, None),
)
LATENT_SIZE = 100
BATCH_NORM_EPS = 1e-5  # PyTorch's BatchNorm2d default

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class CheckpointError(ValueError):
    """A checkpoint that is not a plain PyTorch state dict (or is damaged)."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. inside the pickle: only the dtype matters."""

    dtype: type


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_ignored: Any) -> np.ndarray:
    """Our stand-in for ``torch._utils._rebuild_tensor_v2``: a strided view copied into an array."""
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    itemsize = storage.itemsize
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if needed > storage.size:
        raise CheckpointError(f"a tensor of shape {tuple(size)} runs past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_ignored: Any) -> np.ndarray:
    return data


# The only globals a state-dict pickle may name. Anything else (os.system, builtins.eval …) is refused.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch zip checkpoint, resolving storages from the zip."""

    def __init__(self, data: bytes, load_storage: Callable[[str, type, int], np.ndarray]) -> None:
        super().__init__(io.BytesIO(data))
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"the checkpoint refers to {module}.{name}, which a plain state dict never needs; refusing to load it"
            ) from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        # torch writes ('storage', storage_type, key, location, numel) for every tensor storage.
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unexpected persistent id in the checkpoint: {pid!r}")
        _tag, storage_type, key, _location, numel = pid
        return self._load_storage(str(key), storage_type.dtype, int(numel))


def load_state_dict(source: str | Path | bytes) -> dict[str, Any]:
    """Read a PyTorch zip checkpoint (``torch.save`` ≥ 1.6) into a dict of numpy arrays, safely."""
    raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as error:
        raise CheckpointError("not a PyTorch zip checkpoint (legacy pickle-only checkpoints are not supported)") from error
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"expected one data.pkl in the checkpoint, found {len(pickles)}")
    root = pickles[0][: -len("data.pkl")]
    order = archive.read(root + "byteorder").decode().strip() if root + "byteorder" in names else "little"
    if order != "little":
        raise CheckpointError(f"checkpoint byte order {order!r} is not supported")

    def load_storage(key: str, dtype: type, numel: int) -> np.ndarray:
        member = f"{root}data/{key}"
        if member not in names:
            raise CheckpointError(f"storage {key} is missing from the checkpoint")
        array = np.frombuffer(archive.read(member), dtype=np.dtype(dtype).newbyteorder("<"))
        if array.size < numel:
            raise CheckpointError(f"storage {key} holds {array.size} values, {numel} expected")
        return array

    try:
        loaded = _StateDictUnpickler(archive.read(pickles[0]), load_storage).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"the checkpoint's data.pkl is damaged: {error}") from error
    if not isinstance(loaded, dict):
        raise CheckpointError(f"the checkpoint holds a {type(loaded).__name__}, not a dict")
    return dict(loaded)


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """``torch.nn.functional.conv_transpose2d`` without bias: ``x`` is N×Cin×H×W, ``weight`` Cin×Cout×k×k.

    Each input pixel scatters a k×k patch of every output channel. We compute all patches with one
    matrix product, then add them into place with k×k strided slice additions (k is 4 here).
    """
    n, c_in, h, w = x.shape
    _, c_out, k, _ = weight.shape
    patches = np.einsum("nchw,cokl->nhwokl", x, weight, optimize=True)
    full_h, full_w = (h - 1) * stride + k, (w - 1) * stride + k
    out = np.zeros((n, c_out, full_h, full_w), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            # Input pixel (y, x) lands on output (y*stride + i, x*stride + j).
            out[:, :, i : i + stride * h : stride, j : j + stride * w : stride] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    if padding:
        out = out[:, :, padding : full_h - padding, padding : full_w - padding]
    return out


class DCGANGenerator:
    """The tutorial DCGAN generator with weights from a state dict; :meth:`generate` makes images."""

    def __init__(self, state_dict: dict[str, Any]) -> None:
        weights = state_dict.get("netG_state_dict", state_dict)
        try:
            self._layers = [self._layer(weights, *spec) for spec in _LAYERS]
        except KeyError as error:
            raise CheckpointError(f"the state dict has no {error.args[0]!r}; is this the DCGAN face generator?") from None
        if self._layers[0][0].shape[0] != LATENT_SIZE:
            raise CheckpointError(f"the first layer expects {self._layers[0][0].shape[0]} latent values, not {LATENT_SIZE}")

    @classmethod
    def from_checkpoint(cls, source: str | Path | bytes) -> DCGANGenerator:
        """Load the generator from a PyTorch checkpoint file (or its bytes)."""
        return cls(load_state_dict(source))

    @staticmethod
    def _layer(weights: dict[str, Any], conv: int, stride: int, padding: int, norm: int | None) -> tuple:
        kernel = np.asarray(weights[f"main.{conv}.weight"], dtype=np.float64)
        if norm is None:
            return kernel, stride, padding, None
        bn = [np.asarray(weights[f"main.{norm}.{name}"], dtype=np.float64) for name in ("weight", "bias", "running_mean", "running_var")]
        gamma, beta, mean, var = bn
        scale = gamma / np.sqrt(var + BATCH_NORM_EPS)
        return kernel, stride, padding, (scale, beta - mean * scale)

    def forward(self, latents: np.ndarray) -> np.ndarray:
        """Run the generator on N×100 latents; returns N×3×64×64 values in [-1, 1]."""
        x = np.asarray(latents, dtype=np.float64).reshape(len(latents), LATENT_SIZE, 1, 1)
        for kernel, stride, padding, norm in self._layers:
            x = conv_transpose2d(x, kernel, stride, padding)
            if norm is None:
                return np.tanh(x)
            scale, shift = norm
            x = np.maximum(x * scale[None, :, None, None] + shift[None, :, None, None], 0.0)
        raise AssertionError("unreachable: the last layer has no batch norm")

    def generate(self, count: int, seed: int) -> list[np.ndarray]:
        """``count`` faces as 64×64×3 ``uint8`` arrays; the same seed always gives the same faces."""
        latents = np.random.default_rng(seed).standard_normal((count, LATENT_SIZE))
        images = self.forward(latents)
        pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return [np.ascontiguousarray(p.transpose(1, 2, 0)) for p in pixels]
