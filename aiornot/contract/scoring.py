"""The fitted rules that turn a model's logits into a verdict, each defined once.

* :class:`Calibration` — Platt scaling of one expert's logit to P(AI);
* :class:`LinearHead` — the semantic expert's logistic-regression head on standardised features;
* :class:`Fusion` — the stated rule that combines the experts' calibrated scores;
* :class:`Thresholds` — the decision thresholds on the fused P(AI), and the verdict they give.

Each class is at once a section of ``detector.json`` (:class:`aiornot.contract.config.ModelConfig`),
the object the :class:`aiornot.Detector` scores with, and the record the API reports: one
representation per concept. Applying them needs NumPy only; fitting them needs scikit-learn and
lives with the experts (:mod:`aiornot.model.experts`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from aiornot.contract.messages import UnknownMessage, message, text

_EPSILON = 1e-6


class _Rule(BaseModel):
    """A fitted rule: immutable once fitted, and every key known (an unknown key in ``detector.json`` is a mistake).

    Its fields always appear in what it serialises to, so the API's response schema lists them as required.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p))


# ------------------------------------------------------------------------------ calibration
class Calibration(_Rule):
    """Platt scaling of one expert: P(AI) = σ(slope · logit + intercept), fitted on held-out images."""

    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(self.slope * np.asarray(logits, dtype=np.float64) + self.intercept)


# ------------------------------------------------------------------------------ semantic head
class LinearHead(_Rule):
    """A logistic-regression head on standardised features: logit = ((x − mean) / scale) · coef + intercept."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    C: float = Field(1.0, description="the L2 penalty the head was fitted with (scikit-learn's C)")

    def logits(self, features: np.ndarray) -> np.ndarray:
        standardised = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return standardised @ np.asarray(self.coef) + self.intercept


# ------------------------------------------------------------------------------------ fusion
class Fusion(_Rule):
    """Logistic stacking: P(AI) = σ(intercept + Σ weight_e · log-odds of expert e's calibrated P(AI)).

    Fitted on held-out predictions only: cross-fitted leave-curation-out predictions (``basis``
    ``"out-of-source"``, :mod:`aiornot.training.out_of_source`) or, for a dataset without curations, the
    validation images. An expert whose fitted weight is negative is dropped and the rest refitted
    (a negative weight would mean "the more this expert says AI, the more real" — an artefact of a
    small sample, not knowledge). ``excluded`` names the experts kept at weight 0 and why, so every
    result still shows them and the reason. With one expert the rule is that expert's calibrated score.

    ``rule`` is written into ``detector.json`` for its readers; it is derived from the fields, so
    the one read back is ignored.
    """

    weights: dict[str, float]
    intercept: float = 0.0
    fitted_on: int = 0
    basis: Literal["validation", "out-of-source"] = "validation"
    excluded: dict[str, str] = {}

    @classmethod
    def one_expert(cls, name: str = "forensic", fitted_on: int = 0) -> "Fusion":
        """The rule of a detector with one expert: its calibrated score is the score."""
        return cls(weights={name: 1.0}, fitted_on=fitted_on)

    @model_validator(mode="before")
    @classmethod
    def _derived_rule_not_read(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rule" in data:
            return {key: value for key, value in data.items() if key != "rule"}
        return data

    @property
    def used_experts(self) -> tuple[str, ...]:
        """The experts the rule reads: those of non-zero weight. One at weight 0 changes no score,
        so prediction need not run it (:meth:`aiornot.Detector.expert_scores` with ``used_only``)."""
        return tuple(name for name, weight in self.weights.items() if weight != 0)

    def __call__(self, expert_scores: dict[str, np.ndarray]) -> np.ndarray:
        """The fused P(AI) per image; ``expert_scores`` needs every expert of :attr:`used_experts`, no more."""
        missing = [name for name in self.used_experts if name not in expert_scores]
        if missing:
            raise KeyError(f"the fusion rule needs the expert(s) {missing}")
        total = np.full(len(next(iter(expert_scores.values()))), self.intercept, dtype=np.float64)
        for name in self.used_experts:
            total += self.weights[name] * log_odds(expert_scores[name])
        return sigmoid(total)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rule(self) -> str:
        """The rule in English, as every result states it."""
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


# -------------------------------------------------------------------------------- thresholds
def threshold_at_fpr(real_scores: np.ndarray, fpr: float) -> float:
    """The smallest threshold that at most ``fpr`` of ``real_scores`` reach (score ≥ threshold).

    The one rule for "at a stated FPR": the thresholds a model stores and the TPR evaluation
    reports are both set this way, on the real photos themselves.
    """
    ordered = np.sort(np.asarray(real_scores, dtype=np.float64))
    allowed = int(np.floor(fpr * len(ordered)))
    return float(np.nextafter(ordered[-allowed - 1], np.inf))


class Thresholds(_Rule):
    """The decision thresholds on calibrated P(AI) and the error rates they were chosen for.

    ``ai``: at or above, the verdict is ``ai``; chosen so that at most ``target_fpr`` of
    validation real photos reach it. ``real``: below, the verdict is ``real``; chosen so that at
    most ``target_fnr`` of validation AI images fall below it. Between them: ``inconclusive``.
    """

    ai: float = Field(0.5, description="score at or above which the pixel verdict is 'ai'")
    real: float = Field(0.5, description="score below which the pixel verdict is 'real'; between: 'inconclusive'")
    target_fpr: float = 0.05
    target_fnr: float = 0.05

    def verdict(self, score: float) -> str:
        if score >= self.ai:
            return "ai"
        if score < self.real:
            return "real"
        return "inconclusive"

    @classmethod
    def choose(cls, scores: np.ndarray, labels: np.ndarray, target_fpr: float = 0.05, target_fnr: float = 0.05) -> "Thresholds":
        """Pick thresholds on validation scores: FPR on real photos ≤ ``target_fpr``, FNR on AI ≤ ``target_fnr``."""
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
        real_scores, ai_scores = scores[labels == 0], np.sort(scores[labels == 1])
        ai_threshold = threshold_at_fpr(real_scores, target_fpr) if len(real_scores) else 0.5
        missed = int(np.floor(target_fnr * len(ai_scores)))
        real_threshold = float(ai_scores[missed]) if len(ai_scores) else 0.5
        # When the classes overlap little, the band closes: one threshold decides.
        real_threshold = min(real_threshold, ai_threshold)
        # Not rounded: rounding a threshold can move one more image across it.
        return cls(ai=min(ai_threshold, 1.0), real=real_threshold, target_fpr=target_fpr, target_fnr=target_fnr)
