"""Rewrite tests/golden/scores.json from the committed default model (run after retraining it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def golden_scores(model_dir: Path | None = None) -> dict[str, dict]:
    """Score, verdict and expert scores of every golden image under the default model."""
    from aiornot.detector import Detector

    detector = Detector.load(model_dir)
    scores = {}
    for image in sorted((HERE / "images").iterdir()):
        result = detector.predict(image, provenance=False)
        if not result.ok:
            raise SystemExit(f"{image.name}: {result.error}")
        scores[image.name] = {"score": result.score, "verdict": result.verdict, "experts": result.experts}
    return {"model": detector.name, "runtime": detector.runtime, "images": scores}


def main() -> int:
    target = HERE / "scores.json"
    target.write_text(json.dumps(golden_scores(), indent=2) + "\n")
    print(f"wrote {target.relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
