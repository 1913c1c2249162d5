"""``cosine_similarity``: regress the cosine of two embeddings onto a similarity label.

Columns: ``anchor``, ``positive``. Label: a float similarity in [0, 1] (STS scores divided by 5).

Formula: ``mean((cos(u, v) - label) ** 2)``.

Source: ms-swift's ``cosine_similarity`` loss (``swift/loss/embedding.py``), which is sentence-transformers'
``CosineSimilarityLoss`` with its defaults (MSE, identity transformation). Written here as a pure function so the
swift formula is tested on fixed tensors; the module is the usual sentence-transformers loss shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from st_qwen3emb.losses._pairs import pair_embeddings


def cosine_similarity_loss(u: Tensor, v: Tensor, labels: Tensor) -> Tensor:
    """``mean((cos(u_i, v_i) - labels_i)^2)`` for ``u, v`` of shape ``(batch, dim)``; scale-invariant in ``u, v``."""
    cos = torch.cosine_similarity(u, v, dim=-1)
    return ((cos - labels.to(cos.dtype).reshape(-1)) ** 2).mean()


class CosineSimilarityLoss(nn.Module):
    """swift's ``cosine_similarity`` loss on a SentenceTransformer: ``mean((cos(u, v) - label)^2)``.

    Inputs: (anchor, positive) pairs with a float label in [0, 1].
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        u, v, y = pair_embeddings(self.model, sentence_features, labels, "cosine_similarity")
        return cosine_similarity_loss(u, v, y)

    def get_config_dict(self) -> dict[str, Any]:
        return {"formula": "mean((cos(u, v) - label)^2)"}
