"""The detector's experts, their calibration, and the stated rule that fuses them.

* **semantic** — a frozen pretrained encoder (:mod:`aiornot.model.encoders`, CLIP ViT-B/16 offline)
  with a small logistic-regression head: it reads what a picture *looks like*, and transfers to
  generators it never saw far better than a CNN trained on a few hundred images.
* **forensic** — our compact CNN on native-resolution tiles (:mod:`aiornot.model.networks`): it reads the
  pixel-level traces of up-sampling and demosaicing, which survive a change of subject.

Each expert's logit is mapped to a calibrated P(AI) by Platt scaling fitted on validation images;
the calibrated scores are combined by :class:`Fusion` — logistic stacking on the experts'
log-odds, fitted on validation only — and the rule is printed in every result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from aiornot.contract.messages import UnknownMessage, message, text

_EPSILON = 1e-6


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: P(AI) = sigmoid(slope · logit + intercept), fitted on validation images."""

    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(self.slope * np.asarray(logits, dtype=np.float64) + self.intercept)

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> "Calibration":
        """Fit on held-out logits; a weak L2 penalty keeps tiny validation sets from overfitting.

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
        return cls(float(model.coef_[0, 0]), float(model.intercept_[0]))


# ------------------------------------------------------------------------------ semantic head
@dataclass(frozen=True)
class LinearHead:
    """A logistic-regression head on standardised features: logit = ((x − mean) / scale) · coef + intercept."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    C: float = 1.0

    def logits(self, features: np.ndarray) -> np.ndarray:
        standardised = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return standardised @ np.asarray(self.coef) + self.intercept

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, *, sample_weight: np.ndarray | None = None, C: float = 0.05) -> "LinearHead":
        """Fit on training features. A strong L2 penalty (small ``C``): a few hundred images, 512 features."""
        from sklearn.linear_model import LogisticRegression

        features = np.asarray(features, np.float64)
        mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        model = LogisticRegression(C=C, max_iter=2000).fit((features - mean) / scale, labels, sample_weight=sample_weight)
        return cls(tuple(mean.round(7)), tuple(scale.round(7)), tuple(model.coef_[0].round(7)), float(model.intercept_[0]), C)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LinearHead":
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(data["coef"]), float(data["intercept"]), float(data.get("C", 1.0)))


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
    return LinearHead.fit(features, labels, sample_weight=weights, C=recipe.semantic_C)


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
        config = {"encoder": self.encoder_id or self.encoder.id, "feature": self.feature, "head": self.head.to_dict(),
                  "calibration": asdict(self.calibration)}
        spec = self.encoder_spec or _custom_spec(self._encoder)
        if spec:
            config["encoder_spec"] = spec
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SemanticExpert":
        return cls(LinearHead.from_dict(config["head"]), Calibration(**config.get("calibration", {})),
                   feature=config.get("feature", "embeds"), encoder_id=config.get("encoder"), encoder_spec=config.get("encoder_spec"))


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
@dataclass(frozen=True)
class Fusion:
    """Logistic stacking: P(AI) = σ(intercept + Σ weight_e · log-odds of expert e's calibrated P(AI)).

    Fitted on held-out predictions only: cross-fitted leave-curation-out predictions (``basis``
    ``"out-of-source"``, :mod:`aiornot.training.out_of_source`) or, for a dataset without curations, the
    validation images. An expert whose fitted weight is negative is dropped and the rest refitted
    (a negative weight would mean "the more this expert says AI, the more real" — an artefact of a
    small sample, not knowledge). ``excluded`` names the experts kept at weight 0 and why, so every
    result still shows them and the reason. With one expert the rule is that expert's calibrated score.
    """

    weights: dict[str, float] = field(default_factory=lambda: {"forensic": 1.0})
    intercept: float = 0.0
    fitted_on: int = 0
    basis: str = "validation"
    excluded: dict[str, str] = field(default_factory=dict)

    def __call__(self, expert_scores: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name, weight in self.weights.items() if name not in expert_scores and weight != 0]
        if missing:
            raise KeyError(f"the fusion rule needs the expert(s) {missing}")
        total = np.full(len(next(iter(expert_scores.values()))), self.intercept, dtype=np.float64)
        for name, weight in self.weights.items():
            if weight != 0:
                total += weight * log_odds(expert_scores[name])
        return sigmoid(total)

    @classmethod
    def fit(cls, expert_scores: dict[str, np.ndarray], labels: np.ndarray, *, C: float = 1.0) -> "Fusion":
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
                return cls({n: kept.get(n, 0.0) for n in expert_scores}, round(float(model.intercept_[0]), 6), len(labels))
            names = [n for n, w in zip(names, weights) if w >= 0] or [names[int(np.argmax(weights))]]
        raise ValueError("no expert scores to fuse")

    @property
    def rule(self) -> str:
        return self._rendered("en")

    @property
    def rule_ko(self) -> str:
        return self._rendered("ko")

    def _rendered(self, language: str) -> str:
        terms = " + ".join(f"{w:.2f}·logit({_expert_name(name, language)})" for name, w in self.weights.items())
        fitted = text(f"experts.fusion.{self.basis if self.fitted_on else 'unfitted'}", language, count=self.fitted_on)
        excluded = "".join("; " + text("experts.fusion.excluded", language, name=_expert_name(name, language),
                                       reason=_exclusion_reason(reason, language))
                           for name, reason in self.excluded.items())
        return f"P(AI) = σ({terms} {'+' if self.intercept >= 0 else '−'} {abs(self.intercept):.2f}); {fitted}{excluded}"

    def to_config(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "intercept": self.intercept, "fitted_on": self.fitted_on, "basis": self.basis,
                "excluded": dict(self.excluded), "rule": self.rule}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Fusion":
        return cls(dict(config["weights"]), float(config.get("intercept", 0.0)), int(config.get("fitted_on", 0)),
                   str(config.get("basis", "validation")), dict(config.get("excluded") or {}))


def _expert_name(name: str, language: str) -> str:
    """An expert's name as the fusion rule writes it (a name the catalogue lacks is written as it is)."""
    try:
        return text(f"experts.name.{name}", language)
    except UnknownMessage:
        return name


def _exclusion_reason(reason: str, language: str) -> str:
    """An exclusion reason in ``language``: they are written in English (see
    :func:`aiornot.training.out_of_source.exclusion_reason`), so only other languages translate them."""
    if language == "en":
        return reason
    out_of_source = message("experts.exclusion.out_of_source_auc")
    if reason.startswith(out_of_source.en):
        return reason.replace(out_of_source.en, out_of_source[language])
    return text("experts.exclusion.recipe", language) if "recipe" in reason else reason
