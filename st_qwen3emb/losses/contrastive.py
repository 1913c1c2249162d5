"""``contrastive``: pull similar pairs together, push dissimilar ones beyond a cosine-distance margin.

Columns: ``anchor``, ``positive``. Label: 1 (similar) or 0 (dissimilar).

Formula, with ``d = 1 - cos(u, v)`` and the fixed margin 0.5:
``mean(0.5 * (y * d^2 + (1 - y) * relu(0.5 - d)^2))``.

Source: ms-swift's ``contrastive`` loss (``swift/loss/embedding.py``), i.e. Hadsell et al. (2006) with cosine distance, as
in sentence-transformers' ``ContrastiveLoss(distance_metric=COSINE_DISTANCE, margin=0.5)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from st_qwen3emb.losses._pairs import pair_embeddings

MARGIN = 0.5  # swift's margin; not configurable there either


def cosine_distance(u: Tensor, v: Tensor) -> Tensor:
    """``1 - cos(u_i, v_i)`` per row."""
    return 1.0 - torch.cosine_similarity(u, v, dim=-1)


def contrastive_loss(u: Tensor, v: Tensor, labels: Tensor, margin: float = MARGIN) -> Tensor:
    """``mean(0.5 * (y d^2 + (1 - y) relu(margin - d)^2))`` with ``d`` the cosine distance of each pair."""
    d = cosine_distance(u, v)
    y = labels.to(d.dtype).reshape(-1)
    return (0.5 * (y * d.pow(2) + (1.0 - y) * F.relu(margin - d).pow(2))).mean()


class ContrastiveLoss(nn.Module):
    """swift's ``contrastive`` loss: cosine distance, margin 0.5, mean over pairs. Inputs: pairs with a 0/1 label."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        u, v, y = pair_embeddings(self.model, sentence_features, labels, "contrastive")
        return contrastive_loss(u, v, y)

    def get_config_dict(self) -> dict[str, Any]:
        return {"distance": "1 - cosine", "margin": MARGIN}

    @property
    def citation(self) -> str:
        return """
@inproceedings{hadsell2006dimensionality,
    author={Hadsell, R. and Chopra, S. and LeCun, Y.},
    booktitle={2006 IEEE Computer Society Conference on Computer Vision and Pattern Recognition (CVPR'06)},
    title={Dimensionality Reduction by Learning an Invariant Mapping},
    year={2006},
    volume={2},
    pages={1735-1742},
    doi={10.1109/CVPR.2006.100}
}
"""
