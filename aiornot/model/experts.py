"""The detector's experts, their calibration, and the stated rule that fuses them.

* **semantic** — a frozen pretrained encoder (:mod:`aiornot.model.encoders`, CLIP ViT-B/16 offline)
  with a small logistic-regression head: it reads what a picture *looks like*, and transfers to
  generators it never saw far better than a CNN trained on a few hundred images.
* **forensic** — our compact CNN on native-resolution tiles (:mod:`aiornot.model.networks`): it reads the
  pixel-level traces of up-sampling and demosaicing, which survive a change of subject.

Each expert's logit is mapped to a calibrated P(AI) by Platt scaling fitted on validation images;
the calibrated scores are combined by :class:`Fusion` — logistic stacking on the experts'
log-odds, fitted on validation only — and the rule is printed in every result.

:class:`Calibration`, :class:`LinearHead` and :class:`Fusion` are defined once, in
:mod:`aiornot.contract.scoring` (they are also ``detector.json``'s sections); they are fitted here,
with scikit-learn: :func:`fit_calibration`, :func:`fit_linear_head`, :func:`fit_fusion`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from aiornot.contract.config import SemanticConfig
from aiornot.contract.scoring import Calibration, Fusion, LinearHead, log_odds, sigmoid

__all__ = [
    "Calibration", "Fusion", "LinearHead", "SemanticExpert", "balanced_weights", "fit_calibration", "fit_fusion",
    "fit_linear_head", "fit_semantic_head", "log_odds", "sigmoid",
]


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Platt scaling fitted on held-out logits; a weak L2 penalty keeps tiny validation sets from overfitting.

    Raises ``ValueError`` when the validation images are of one class only: no mapping from
    logit to P(AI) can be learnt from them.
    """
    from sklearn.linear_model import LogisticRegression

    present = np.unique(np.asarray(labels))
    if len(present) < 2:
        only = {0: "real photos (label 0)", 1: "AI images (label 1)"}.get(int(present[0]), f"label {present[0]}") if len(present) else "nothing"
        raise ValueError(f"calibration needs validation images of both classes, got only {only} ({len(labels)} images); "
                         "use a validation split with real and AI images")
    model = LogisticRegression(C=10.0).fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), labels)
    return Calibration(slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0]))


# ------------------------------------------------------------------------------ semantic head
def fit_linear_head(features: np.ndarray, labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
                    C: float = 0.05) -> LinearHead:
    """A :class:`LinearHead` fitted on training features. A strong L2 penalty (small ``C``): a few hundred images, 512 features."""
    from sklearn.linear_model import LogisticRegression

    features = np.asarray(features, np.float64)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=C, max_iter=2000).fit((features - mean) / scale, labels, sample_weight=sample_weight)
    return LinearHead(mean=mean.round(7).tolist(), scale=scale.round(7).tolist(), coef=model.coef_[0].round(7).tolist(),
                      intercept=float(model.intercept_[0]), C=C)


def balanced_weights(labels: np.ndarray, strata: np.ndarray | None = None) -> np.ndarray:
    """Sample weights giving each class — and within it each content stratum — the same total weight.

    With the portrait flag as stratum, "a face" cannot stand in for "AI" even when most AI images
    are faces and most real ones are not: real portraits weigh as much as AI portraits.
    """
    labels = np.asarray(labels)
    strata = np.zeros(len(labels), int) if strata is None else np.asarray(strata)
    weights = np.zeros(len(labels))
    for label in np.unique(labels):
        in_class = labels == label
        cells = np.unique(strata[in_class])
        for cell in cells:
            rows = in_class & (strata == cell)
            weights[rows] = 1.0 / (rows.sum() * len(cells))
    return weights * len(labels) / weights.sum()


def fit_semantic_head(features: np.ndarray, labels: np.ndarray, strata: np.ndarray | None, recipe: Any) -> LinearHead:
    """The semantic head on features already computed (one row per view), weighted as the recipe says.

    ``recipe``: a :class:`aiornot.training.train.DetectorRecipe` (its ``balance_portraits`` and ``semantic_C``).
    With ``recipe.balance_portraits`` each (class, stratum) cell weighs the same (see
    :func:`balanced_weights`); training, the cross-fitting and the full-size run all fit it here.
    """
    weights = balanced_weights(labels, strata) if recipe.balance_portraits else None
    return fit_linear_head(features, labels, sample_weight=weights, C=recipe.semantic_C)


class SemanticExpert:
    """Frozen encoder features → :class:`LinearHead` logit → calibrated P(AI).

    The encoder is loaded on first use; with a feature store, features already computed for a
    picture are read back instead of recomputed (notebooks, evaluation).
    """

    name = "semantic"

    def __init__(self, head: LinearHead, calibration: Calibration = Calibration(), *, feature: str = "embeds",
                 encoder: Any = None, store: Any = None, encoder_id: str | None = None,
                 encoder_spec: dict[str, Any] | None = None) -> None:
        self.head, self.calibration, self.feature = head, calibration, feature
        self._encoder, self.store, self.encoder_id = encoder, store, encoder_id
        # A non-default encoder (an online user's ONNX export) is recorded by its spec, so the model reloads it.
        self.encoder_spec = encoder_spec

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from aiornot.model.encoders import open_encoder, spec_from_dict

            self._encoder = open_encoder(spec_from_dict(self.encoder_spec) if self.encoder_spec else None)
            if self.encoder_id and self._encoder.id != self.encoder_id:
                raise RuntimeError(f"the semantic head was fitted on {self.encoder_id} features, but the installed encoder is "
                                   f"{self._encoder.id}; reinstall the pinned encoder (make env)")
        return self._encoder

    def features(self, images: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        from aiornot.model.encoders import embed_with_store

        if not len(images):
            return np.zeros((0, len(self.head.coef)))
        return embed_with_store(self.encoder, images, self.store, kind=self.feature, progress=progress)

    def logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.head.logits(self.features(images)) if len(images) else np.zeros(0)

    def to_config(self) -> dict[str, Any]:
        """The ``semantic`` section of ``detector.json`` (``encoder_spec`` only for an encoder other than the default)."""
        from aiornot.model.encoders import offline_backbone

        encoder_id = self.encoder_id or self.encoder.id
        section = SemanticConfig(encoder=encoder_id, backbone=offline_backbone(encoder_id), feature=self.feature, head=self.head,
                                 calibration=self.calibration, encoder_spec=self.encoder_spec or _custom_spec(self._encoder) or None)
        return section.model_dump(exclude_none=True)

    @classmethod
    def from_config(cls, config: SemanticConfig | dict[str, Any]) -> "SemanticExpert":
        """The expert a ``semantic`` section describes (a dict is validated first)."""
        section = config if isinstance(config, SemanticConfig) else SemanticConfig.model_validate(config)
        return cls(section.head, section.calibration, feature=section.feature, encoder_id=section.encoder,
                   encoder_spec=section.encoder_spec)


def _custom_spec(encoder: Any) -> dict[str, Any] | None:
    """The spec of an encoder other than the packaged default, as JSON (None for the default or a stand-in)."""
    spec = getattr(encoder, "spec", None)
    if spec is None:
        return None
    from aiornot.model.encoders import CLIP_SHA256, spec_to_dict

    if spec.sha256 == CLIP_SHA256:
        return None
    return spec_to_dict(spec)


# ------------------------------------------------------------------------------------ fusion
def fit_fusion(expert_scores: dict[str, np.ndarray], labels: np.ndarray, *, C: float = 1.0) -> Fusion:
    """The :class:`Fusion` rule fitted on held-out calibrated scores, dropping any expert whose weight comes out negative."""
    from sklearn.linear_model import LogisticRegression

    names = list(expert_scores)
    labels = np.asarray(labels)
    while names:
        features = np.column_stack([log_odds(expert_scores[name]) for name in names])
        model = LogisticRegression(C=C).fit(features, labels)
        weights = model.coef_[0]
        if (weights >= 0).all() or len(names) == 1:
            kept = {n: round(float(max(w, 0.0)), 6) for n, w in zip(names, weights)}
            # A dropped expert stays in the rule with weight 0, so the result still says it was heard.
            return Fusion(weights={n: kept.get(n, 0.0) for n in expert_scores}, intercept=round(float(model.intercept_[0]), 6),
                          fitted_on=len(labels))
        names = [n for n, w in zip(names, weights) if w >= 0] or [names[int(np.argmax(weights))]]
    raise ValueError("no expert scores to fuse")
