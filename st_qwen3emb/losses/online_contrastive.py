"""``online_contrastive``: the contrastive loss on the hard pairs of the batch only.

Columns: ``anchor``, ``positive``. Label: 1 (similar) or 0 (dissimilar); anything else is an error.

Formula, with ``d = 1 - cos(u, v)`` and the fixed margin 0.5: hard positives are the positive pairs with
``d > min(d over negative pairs)``, hard negatives the negative pairs with ``d < max(d over positive pairs)``;
``loss = sum(d_hard_pos^2) + sum(relu(0.5 - d_hard_neg)^2)`` — a sum over pairs, not a mean, as in swift.

Batches with only one kind of pair: when the batch has no negative pair, no positive can be judged "easy", so every
positive counts as hard (and symmetrically for negatives when there is no positive). Positives then still pull
together and negatives inside the margin still push apart, instead of the batch being skipped. A batch with no
pairs selected gives 0 (still attached to the graph, so a training step does not fail).

Source: ms-swift's ``online_contrastive`` loss (``swift/loss/embedding.py``), itself sentence-transformers'
``OnlineContrastiveLoss``. Deliberate difference on the edge cases only: swift compares against the other group only
when it has *more than one* pair and otherwise against the group's own mean, so a batch with exactly one positive
selects negatives by their own mean distance rather than by that positive; here one pair is enough to define
"hard", and an empty group selects everything as described above.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from st_qwen3emb.losses._pairs import pair_embeddings
from st_qwen3emb.losses.contrastive import MARGIN, cosine_distance


def online_contrastive_loss(u: Tensor, v: Tensor, labels: Tensor, margin: float = MARGIN) -> Tensor:
    """Sum of ``d^2`` over hard positive pairs plus ``relu(margin - d)^2`` over hard negative pairs (see module doc)."""
    d = cosine_distance(u, v)
    y = labels.reshape(-1)
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"online_contrastive labels must be 0 or 1, got {sorted(set(y.tolist()))}")
    pos = d[y == 1]
    neg = d[y == 0]
    # The thresholds are selection rules, not part of the graph.
    hard_pos = pos[pos > neg.detach().min()] if neg.numel() else pos
    hard_neg = neg[neg < pos.detach().max()] if pos.numel() else neg
    return hard_pos.pow(2).sum() + F.relu(margin - hard_neg).pow(2).sum()


class OnlineContrastiveLoss(nn.Module):
    """swift's ``online_contrastive`` loss: hard pairs only, summed. Inputs: pairs with a 0/1 label."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        u, v, y = pair_embeddings(self.model, sentence_features, labels, "online_contrastive")
        return online_contrastive_loss(u, v, y)

    def get_config_dict(self) -> dict[str, Any]:
        return {"distance": "1 - cosine", "margin": MARGIN, "reduction": "sum over hard pairs"}
