"""Lazy image views (aiornot.io.lazy): decoded when read, and the pipeline never holds them all.

The guard on the notebooks is twofold: the pipeline functions they call are run here over a
:class:`LazyImages` that counts the decoded images alive at once, with the cache switched off;
and the notebooks' code is checked to get its pixels only through those views.
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aiornot.evaluation import protocol
from aiornot.io import lazy, transforms
from aiornot.training import train
from aiornot.evaluation import robustness
from aiornot.io.decode import open_image
from aiornot.contract.paths import ROOT

from conftest import FakeEncoder


def image_frame(folder: Path, count: int, size: tuple[int, int] = (80, 72)) -> pd.DataFrame:
    """``count`` noise PNGs on disk, labelled alternately, two per source."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
        rows.append({"path": str(path), "label": i % 2, "source": f"s{i // 2}", "generator": "g" if i % 2 else None})
    return pd.DataFrame(rows)


class LiveCounter:
    """Counts images made (decoded or transformed) and the most of them alive at one time."""

    def __init__(self, view: lazy.LazyImages | None = None) -> None:
        self.decodes, self.alive, self.peak = 0, 0, 0
        if view is not None:
            view._load = self.wrap(view._load)

    def wrap(self, make):
        """``make`` whose every result is counted while it lives."""

        def counted(*args) -> np.ndarray:
            pixels = np.array(make(*args))  # a fresh base array, so its lifetime is its own
            self.decodes += 1
            self.alive += 1
            self.peak = max(self.peak, self.alive)
            weakref.finalize(pixels, self._freed)
            return pixels

        return counted

    def _freed(self) -> None:
        self.alive -= 1


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setattr(lazy.PIXEL_CACHE, "budget_bytes", 0)
    lazy.PIXEL_CACHE.clear()
    yield
    lazy.PIXEL_CACHE.clear()


def test_images_decode_when_read_and_match_the_safe_decoder(tmp_path: Path) -> None:
    frame = image_frame(tmp_path, 6)
    view = lazy.images(frame)
    counter = LiveCounter(view)
    subset, changed = view[1:4], view.map(lambda p: p[:10])
    both = lazy.chain(subset, view.take(np.array([True, False, False, False, False, True])))
    assert counter.decodes == 0 and len(view) == 6 and len(subset) == 3 and len(both) == 5
    assert np.array_equal(view[2], open_image(frame.at[2, "path"]).pixels)
    assert np.array_equal(both[4], view[5]) and np.array_equal(both[0], view[1]) and np.array_equal(view[-1], view[5])
    assert changed[3].shape == (10, 80, 3)
    assert not view[0].flags.writeable  # what the cache hands out cannot be changed by a caller
    with pytest.raises(IndexError):
        view[6]
    with pytest.raises(ValueError, match="mask"):
        view.take([True, False])


def test_the_cache_keeps_recent_images_within_its_byte_budget() -> None:
    cache = lazy.PixelCache(budget_bytes=3 * 1000)
    for i in range(5):
        cache.put((0, i), np.zeros(1000, np.uint8))
    assert cache.bytes_held == 3000 and cache.get((0, 0)) is None and cache.get((0, 4)) is not None
    cache.put((1, 0), np.zeros(5000, np.uint8))  # larger than the whole budget: not kept
    assert cache.get((1, 0)) is None and cache.bytes_held == 3000


def test_a_cached_image_is_decoded_once(tmp_path: Path) -> None:
    view = lazy.images(image_frame(tmp_path, 3))
    counter = LiveCounter(view)
    for _ in range(3):
        view[1]
    assert counter.decodes == 1


def test_a_large_image_is_cut_to_a_centred_window(tmp_path: Path) -> None:
    frame = image_frame(tmp_path, 1, size=(300, 100))
    assert lazy.images(frame, max_side=128)[0].shape == (100, 128, 3)
    assert lazy.images(frame, max_side=None)[0].shape == (100, 300, 3)


@pytest.mark.slow  # trains both CNNs, fits the heads and runs a protocol fold: over a minute
def test_training_calibration_scoring_and_the_protocol_hold_a_batch_not_the_dataset(tmp_path: Path, no_cache) -> None:
    """The notebooks' pipeline on 96 lazily read images: never more than a batch alive at once."""
    count = 96
    frame = image_frame(tmp_path, count)
    frame["split"] = np.where(np.arange(count) < 48, "train", np.where(np.arange(count) < 72, "validation", "test"))
    frame["family"] = np.where(frame["label"] == 1, "diffusion", None)
    frame["generator"] = np.where(frame["label"] == 1, np.where(np.arange(count) % 4 == 1, "g1", "g2"), None)
    view = lazy.images(frame)
    counter = LiveCounter(view)
    reencoded = view.map(counter.wrap(transforms.reencode_like_upload))
    recipe = train.DetectorRecipe(forensic=train.TrainConfig(epochs=1, batch_size=8, crop_size=32, steps_per_epoch=3, patience=1),
                                  max_tiles=4)
    parts = {name: np.flatnonzero(frame["split"] == name) for name in ("train", "validation", "test")}
    labels = frame["label"].to_numpy()
    detector, _ = train.fit_detector(view.take(parts["train"]), labels[parts["train"]], None, view.take(parts["validation"]),
                                     labels[parts["validation"]], recipe, encoder=FakeEncoder(), verbose=False)
    test = view.take(parts["test"])
    scores = detector.scores(test)
    seed_run = train.fit(view.take(parts["train"]), labels[parts["train"]], view.take(parts["validation"]), labels[parts["validation"]],
                         train.TrainConfig(model="seed_cnn", epochs=1, batch_size=8), verbose=False)
    robust = robustness.robustness(test, labels[parts["test"]], {"detector": detector.scores}, {"jpeg q50": counter.wrap(lambda p: transforms.jpeg(p, 50))})
    held = protocol.held_out_groups(frame, min_images=8, min_real_images=1000)
    table = protocol.run(frame, view, reencoded, held[:1], protocol.fold_recipe(recipe, epochs=1, steps_per_epoch=2),
                         encoder=FakeEncoder(), rounds=5, progress=False)
    assert len(scores) == 24 and np.isfinite(scores).all() and len(robust) == 1 and len(table) == 2
    assert len(seed_run.history) == 1
    assert counter.decodes > 2 * count  # every stage read the images, again and again ...
    # ... but never held more than a training batch's worth of decoded or transformed images (each split has more images than that).
    assert counter.peak <= recipe.forensic.batch_size < len(parts["test"]), counter.peak


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_get_pixels_only_through_lazy_views(notebook: Path) -> None:
    """A notebook that decoded images itself (a list of pixels per row) would hold a whole dataset."""
    code = notebook_code(notebook)
    for forbidden in ("decode_all", "open_image(", "image_source(", ".pixels for"):
        assert forbidden not in code, f"{notebook.name} uses {forbidden!r}; read images through aiornot.io.lazy instead"
