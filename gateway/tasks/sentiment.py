"""Text sentiment (sentiment-analyzer, a Triton ensemble): raw text in, a score in [-1, 1]
and the class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.errors import GatewayError, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import Answer, Context, Prepared, key_material, require, stack_inputs
from gateway.triton import ServedModel

INPUT = "text"


class TextSentiment:
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        require(request, model, "text")
        if request.feature_overrides or request.explain:
            raise InvalidRequest(f"{model.name} takes only text (no overrides, no explain)")

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        out: list[Prepared | GatewayError] = []
        for request in requests:
            text = str(request.text)
            array = np.array([[text.encode("utf-8")]], dtype=np.object_)
            out.append(Prepared(request, {INPUT: array}, key_material(text)))
        return out

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        outputs = await ctx.triton.infer(model, stack_inputs(prepared))
        labels = model.class_labels
        probabilities = outputs["probabilities"].reshape(len(prepared), -1)
        scores = outputs["score"].reshape(-1)
        return [
            {
                "prediction": float(score),
                "confidence": float(row.max()),
                "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
            }
            for score, row in zip(scores, probabilities, strict=True)
        ]
