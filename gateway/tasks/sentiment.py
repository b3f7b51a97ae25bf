"""Text sentiment (sentiment-analyzer, a Triton ensemble): raw text in, a score in [-1, 1]
and the class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.errors import GatewayError
from gateway.schemas import PredictRequest
from gateway.tasks.base import (
    Answer,
    Context,
    Prepared,
    filled,
    infer_batched,
    key_material,
    require_plain,
    split_missing,
    stack_inputs,
)
from gateway.triton import ServedModel

INPUT = "text"


class TextSentiment:
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        require_plain(request, model, "text", refusal="takes only text (no overrides, no explain)")

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        out, complete = split_missing(requests, model, "text")
        for index in complete:
            text = str(getattr(requests[index], "text", None))
            array = np.array([[text.encode("utf-8")]], dtype=np.object_)
            # The text is the whole input: logged as what identifies the request.
            out[index] = Prepared(
                requests[index], {INPUT: array}, key_material(text), logged_entity={"text": text}
            )
        return filled(out)

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        outputs = await infer_batched(ctx, model, stack_inputs(prepared))
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
