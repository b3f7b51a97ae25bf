"""Tabular classifiers (risk, behaviour): a feature-service vector in, probabilities out.

Explanations are occlusion importances computed here, in the service layer: for each
feature, the change of the predicted class's probability when that feature is set to its
training median (``feature_reference`` in the model's config), all in the same Triton call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.errors import EntityNotFound, GatewayError, InvalidFeatures, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import Answer, Context, Prepared, filled, infer_batched, split_missing
from gateway.triton import ServedModel

if TYPE_CHECKING:
    from gateway.features import FeatureRow

INPUT = "features"
# Overrides may leave the training range by this share of its span on either side.
RANGE_MARGIN = 0.5


def plausible_ranges(model: ServedModel) -> dict[str, tuple[float, float]]:
    """Per feature, the override values accepted: the training range widened by
    ``RANGE_MARGIN`` of its span on either side (the model's load checked the lengths)."""
    low, high = model.feature_bounds
    ranges = {}
    for name, lo, hi in zip(model.feature_names, low, high, strict=True):
        span = hi - lo
        ranges[name] = (lo - RANGE_MARGIN * span, hi + RANGE_MARGIN * span)
    return ranges


class TabularClassifier:
    def __init__(self, multiclass: bool) -> None:
        self._multiclass = multiclass

    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        if not request.feature_overrides:
            return  # the common case, on every request
        names = model.feature_names
        unknown = sorted(set(request.feature_overrides) - set(names))
        if unknown:
            raise InvalidFeatures(
                f"unknown feature(s) in feature_overrides: {', '.join(unknown)}; "
                f"{model.name} uses: {', '.join(names)}"
            )
        ranges = plausible_ranges(model)
        for name, value in request.feature_overrides.items():
            lo, hi = ranges[name]
            if not lo <= value <= hi:
                raise InvalidRequest(
                    f"feature_overrides.{name}: {value} is outside the plausible range "
                    f"[{lo:.6g}, {hi:.6g}] of what {model.name} was trained on"
                )

    def join_keys(self, ctx: Context, model: ServedModel) -> tuple[str, ...]:
        return ctx.features.layout(str(model.feature_service)).join_keys

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        service = str(model.feature_service)
        keys = self.join_keys(ctx, model)
        # A row without its keys fails alone; the others are still read.
        out, keyed = split_missing(requests, model, *keys)
        rows = [{key: getattr(requests[index], key) for key in keys} for index in keyed]
        if rows:
            features = await ctx.features.read(service, rows, (model.name, str(model.version)))
        else:
            features = []
        for index, entity, row in zip(keyed, rows, features, strict=True):
            out[index] = self._prepare_row(model, requests[index], entity, row)
        return filled(out)

    def _prepare_row(
        self,
        model: ServedModel,
        request: PredictRequest,
        entity: dict[str, Any],
        row: FeatureRow | EntityNotFound,
    ) -> Prepared | GatewayError:
        if isinstance(row, EntityNotFound):
            return row
        values = {**row.values, **request.feature_overrides}
        missing = [name for name in model.feature_names if values.get(name) is None]
        if missing:
            return InvalidFeatures(
                f"features without a value: {', '.join(missing)}; pass them in feature_overrides"
            )
        used = {name: values[name] for name in model.feature_names}
        vector = np.array([list(used.values())], np.float32)
        # The answer depends on the effective feature values only (the cache key is their
        # hash): two rows with the same values share one entry.
        material = vector.tobytes() + (b"\x01" if request.explain else b"\x00")
        return Prepared(
            request,
            {INPUT: vector},
            material,
            row.stale_views,
            logged_entity=entity,
            logged_features=used,
            feature_timestamps=row.event_timestamps,
        )

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        vectors = np.concatenate([item.inputs[INPUT] for item in prepared])
        # One reference value per feature: the model's load checked the lengths.
        reference = np.array(model.feature_reference, np.float32)
        explained = [i for i, item in enumerate(prepared) if item.request.explain]
        occluded = [_occlusions(vectors[i], reference) for i in explained]
        batch = np.concatenate([vectors, *occluded]) if occluded else vectors
        output = (await infer_batched(ctx, model, {INPUT: batch}))[model.output_names[0]]
        probabilities = self._probabilities(output)
        answers: list[Answer | GatewayError] = []
        for index in range(len(prepared)):
            answers.append(self._answer(model, probabilities[index]))
        width = vectors.shape[1]
        for position, index in enumerate(explained):
            start = len(prepared) + position * width
            answer = answers[index]
            assert isinstance(answer, dict)
            predicted = answer.pop("_class")
            base = probabilities[index][predicted]
            after = probabilities[start : start + width, predicted]
            answer["feature_importance"] = {
                name: float(base - value)
                for name, value in zip(model.feature_names, after, strict=True)
            }
        for answer in answers:
            if isinstance(answer, dict):
                answer.pop("_class", None)
        return answers

    def _probabilities(self, output: np.ndarray) -> np.ndarray:
        if self._multiclass:
            return output.reshape(output.shape[0], -1)
        positive = output.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)

    def _answer(self, model: ServedModel, probabilities: np.ndarray) -> Answer:
        predicted = int(probabilities.argmax())
        if self._multiclass:
            labels = model.class_labels
            return {
                "prediction": labels[predicted],
                "confidence": float(probabilities[predicted]),
                "probabilities": {
                    label: float(p) for label, p in zip(labels, probabilities, strict=True)
                },
                "_class": predicted,
            }
        positive = float(probabilities[1])
        return {
            "prediction": positive,
            "confidence": max(positive, 1.0 - positive),
            "_class": 1,
        }


def _occlusions(vector: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """One row per feature: ``vector`` with that feature set to its reference value."""
    rows = np.repeat(vector[None, :], len(vector), axis=0)
    rows[np.arange(len(vector)), np.arange(len(vector))] = reference
    return rows
