"""The ID-photo case study's summary (notebook 04), stored with the model for the card and the README.

The section is the JSON form of :class:`~aiornot.contract.config.IdPhotoCaseStudy`: the held-out portraits,
each view's ROC AUC and TPR at 5 % FPR with their intervals, the share of real and AI portraits each view
flags ``ai``, what an ID photo's ordinary life does, and how portraits are spread over the training classes
(a large gap lets "a face" stand in for "AI", which the card names as the likely cause).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aiornot.contract.result import VERDICTS, Result
from aiornot.detector import update_config
from aiornot.io import datasets, transforms

#: The figures stored for each view (the card quotes them with their intervals).
VIEW_METRICS = ("ROC AUC", "TPR @ 5% FPR")
#: The shares :func:`caveat_outcomes` measures per condition and class (stored as ``<class>_<metric>``).
CAVEAT_METRICS = (*(f"called {verdict}" for verdict in VERDICTS), "caveat shown", "neither")
#: The condition that is the office's everyday case: the file as the applicant sent it.
AS_SUBMITTED = "file as submitted"
#: The JPEG quality an office's re-save is replayed at (as notebook 04's "JPEG q70" condition).
RESAVE_QUALITY = 70


def _rounded(values: Any) -> float | None:
    return None if pd.isna(values) else round(float(values), 4)


def best_view(comparison: pd.DataFrame) -> str:
    """The view with the highest ROC AUC in ``comparison`` (columns: view × value/ci_low/ci_high)."""
    return comparison.xs("value", axis=1, level=1).loc["ROC AUC"].idxmax()


def flagged_share(scores: np.ndarray, labels: np.ndarray, label: int, threshold: float) -> float:
    """The share of the ``label`` photos whose score reaches ``threshold``, to 4 decimals."""
    return round(float(np.mean(np.asarray(scores)[labels == label] >= threshold)), 4)


def training_portrait_share(training_split: pd.DataFrame) -> dict[str, float]:
    """The share of portraits among the real and among the AI images of the training split."""
    portrait, labels = datasets.content_strata(training_split), training_split["label"].to_numpy()
    return {name: round(float(portrait[labels == label].mean()), 4) for label, name in ((0, "real"), (1, "ai"))}


def received_files(frame: pd.DataFrame, photos: Sequence[np.ndarray], quality: int = RESAVE_QUALITY) -> dict[str, Iterator[bytes | str]]:
    """The files an office receives for ``frame``'s photos, made one at a time when read: each file as submitted,
    and each photo (``photos``, in the same order) re-saved as a JPEG at ``quality`` without metadata."""
    return {AS_SUBMITTED: (datasets.image_source(row) for _, row in frame.iterrows()),
            f"re-saved as JPEG q{quality}": (transforms.jpeg_bytes(pixels, quality) for pixels in photos)}


def caveat_outcomes(results: Mapping[str, Iterable[Result]], labels: np.ndarray) -> pd.DataFrame:
    """What the officer sees, per condition and class: the share of each verdict (``ai``; ``inconclusive``, a human
    check; ``real``), the share shown a caveat, and the share with neither an ``ai`` verdict nor a caveat (for AI
    photos: a fake passing without a word).

    ``results``: per condition, the service's Results for the photos whose ``labels`` are given, in order. A photo
    the service could not read raises :class:`ValueError` (counted, it would pass for "neither").
    """
    rows = []
    for condition, condition_results in results.items():
        condition_results = list(condition_results)
        if unread := [r.path for r in condition_results if r.error]:
            raise ValueError(f"{condition}: {len(unread)} photos could not be read (first: {unread[0]})")
        outcome = pd.DataFrame([{"verdict": r.verdict, "caveat": bool(r.caveats)} for r in condition_results])
        if len(outcome) != len(labels):
            raise ValueError(f"{condition}: {len(outcome)} results for {len(labels)} photos")
        for label, name in ((0, "real"), (1, "AI")):
            chosen = outcome[labels == label]
            rows.append({"condition": condition, "class": name, "photos": len(chosen),
                         **{f"called {verdict}": (chosen["verdict"] == verdict).mean() for verdict in VERDICTS},
                         "caveat shown": chosen["caveat"].mean(),
                         "neither": ((chosen["verdict"] != "ai") & ~chosen["caveat"]).mean()})
    return pd.DataFrame(rows)


def case_study_summary(*, labels: np.ndarray, has_face: np.ndarray, views: dict[str, np.ndarray], comparison: pd.DataFrame,
                       life: pd.DataFrame, caveats: pd.DataFrame | None = None, warning: str | None, fusion_rule: str | None,
                       padding: pd.DataFrame | None, face_audit: pd.DataFrame, training_split: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """The ``id_photo_case_study`` section from notebook 04's measured tables.

    ``views`` maps each view (whole photo, face crop, mean of both) to its scores on the portraits whose
    ``labels`` are given; ``comparison`` holds :func:`metrics.metrics_with_intervals` per view; ``life`` has
    one row per ID-photo-life condition and class (``real``/``AI``) with its ``flagged ai`` share; ``caveats`` (or
    None) :func:`caveat_outcomes`' table; ``padding`` (or None) the forensic scores of edge-padded against cut crops
    with a ``label`` column; ``face_audit`` :func:`faces.detection_audit`'s table; ``threshold`` the stored ``ai``
    threshold.
    """
    return {
        "portraits": int(len(labels)), "real": int((labels == 0).sum()), "ai": int((labels == 1).sum()),
        "faces_found": int(np.sum(has_face)), "best_view": best_view(comparison),
        "views": {view: {metric: {key: _rounded(value) for key, value in comparison.loc[metric, view].items()} for metric in VIEW_METRICS}
                  for view in views},
        "real_flagged": {view: flagged_share(scores, labels, 0, threshold) for view, scores in views.items()},
        "ai_flagged": {view: flagged_share(scores, labels, 1, threshold) for view, scores in views.items()},
        "id_frame_life": {condition: {f"{name.lower()}_flagged": round(float(value), 4)
                                      for name, value in part.set_index("class")["flagged ai"].items()}
                          for condition, part in life.groupby("condition", sort=False)},
        "caveat_outcomes": {} if caveats is None else {
            condition: {f"{row['class'].lower()}_{metric.replace(' ', '_')}": round(float(row[metric]), 4)
                        for _, row in part.iterrows() for metric in CAVEAT_METRICS}
            for condition, part in caveats.groupby("condition", sort=False)},
        "warning": warning,
        "fusion": fusion_rule,
        "padding": None if padding is None else {label: {key: round(float(value), 4) for key, value in part.drop(columns="label").mean().items()}
                                                 | {"photos": int(len(part))} for label, part in padding.groupby("label")},
        "face_detection": {key: int(value) for key, value in face_audit.loc["all"].items()},
        "training_portrait_share": training_portrait_share(training_split),
    }


def store_case_study(model_dir: str | Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Store ``summary`` in the model's ``detector.json`` (validated first; the networks are left alone), so
    the model card quotes these numbers rather than anyone typing them in. Returns the merged config."""
    return update_config(model_dir, id_photo_case_study=summary)
