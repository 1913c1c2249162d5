"""``margin_mse``: regress the student's score margins (positive minus each negative) onto the teacher's.

Columns: ``anchor``, ``positive``, ``negative_1..negative_k`` (k >= 1). Label: the teacher's ``1 + k`` scores of the
row's documents, positive first (the ``scores`` list that ``st-qwen3emb mine --scores`` writes).

Formula, with ``s_ij = cos(q_i, d_ij)`` (``j = 0`` the positive) and ``t_ij`` the teacher's scores:
``loss = mean_{i, j >= 1} ((s_i0 - s_ij) - (t_i0 - t_ij))^2``. The teacher's margins are on its own scale: cosine
margins lie in [-2, 2], so a reranker's logits usually need rescaling into that range before this loss (or use
``distill_kl``, which only reads their order and spread through a temperature).

Source: Hofstätter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
Distillation" (arXiv:2010.02666); the math is exactly sentence-transformers' ``MarginMSELoss``
(``sentence_transformers/sentence_transformer/losses/margin_mse.py``) with cosine similarity, which this class runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sentence_transformers.sentence_transformer.losses import MarginMSELoss as STMarginMSELoss
from sentence_transformers.util import pairwise_cos_sim
from torch import Tensor, nn

from st_qwen3emb.losses.distill_kl import teacher_labels


def margin_mse_loss(student_scores: Tensor, teacher_scores: Tensor) -> Tensor:
    """``mean(((s_0 - s_j) - (t_0 - t_j))^2)`` over rows and negatives, for ``(batch, 1 + k)`` score matrices."""
    student_margins = student_scores[:, :1] - student_scores[:, 1:]
    teacher = teacher_scores.detach().to(student_scores.dtype)
    return ((student_margins - (teacher[:, :1] - teacher[:, 1:])) ** 2).mean()


class MarginMSELoss(STMarginMSELoss):
    """``margin_mse`` on a SentenceTransformer: sentence-transformers' ``MarginMSELoss`` with cosine scores.
    Inputs: (anchor, positive, negative_1..k) with ``1 + k`` teacher scores."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, similarity_fct=pairwise_cos_sim)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        from st_qwen3emb.losses._forward import embed_columns

        columns = list(sentence_features)
        embeddings = embed_columns(self.model, columns)
        labels = teacher_labels(labels, embeddings[0].shape[0], len(columns), "margin_mse")
        return self.compute_loss_from_embeddings(embeddings, labels.to(embeddings[0].dtype))

    def get_config_dict(self) -> dict[str, Any]:
        return {"similarity_fct": "cos_sim", "formula": "mean(((s_pos - s_neg) - (t_pos - t_neg))^2)"}
