"""``distill_kl``: listwise distillation of a teacher's (reranker's) scores into the embedder.

Columns: ``anchor``, ``positive``, ``negative_1..negative_k`` (k >= 1). Label: the teacher's scores of the row's
``1 + k`` documents, ``[score(anchor, positive), score(anchor, negative_1), ...]``, as ``st-qwen3emb mine
--scores`` writes them (a ``scores`` list in the row).

Formula, with ``s_ij = cos(q_i, d_ij)`` over the row's documents ``d_i0`` (the positive) .. ``d_ik``, ``t_ij`` the
teacher's scores, ``T`` the student temperature and ``T_t`` the teacher's:
``loss = T^2 * mean_i KL(softmax(t_i / T_t) || softmax(s_i / T))``. The ``T^2`` factor (Hinton et al.) keeps the
gradient scale independent of ``T``; with Adam it only changes the logged value.

Options: ``temperature`` (``DISTILL_TEMPERATURE``, default 0.05: cosines span [-1, 1], so the student needs the same
sharpening infonce gets from its temperature) and ``teacher_temperature`` (``DISTILL_TEACHER_TEMPERATURE``, default
1.0, right for reranker logits such as Qwen3-Reranker's ``z_yes - z_no``; for cosine scores from an embedder use the
student's 0.05). Keywords win over the variables, which are read when the loss is built.

Source: the listwise KL distillation of the Qwen3 Embedding report (arXiv:2506.05176) and FlagEmbedding's
``FlagEmbedding/abc/finetune/embedder/AbsModeling.py`` (``distill_loss`` "kl_div"); the math is exactly
sentence-transformers' ``DistillKLDivLoss`` (``sentence_transformers/sentence_transformer/losses/distill_kl_div.py``)
with cosine similarity and separate student/teacher temperatures, which this class runs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss
from sentence_transformers.util import pairwise_cos_sim
from torch import Tensor, nn

from st_qwen3emb.losses.env import DISTILL_TEACHER_TEMPERATURE_ENV as TEACHER_TEMPERATURE_ENV
from st_qwen3emb.losses.env import DISTILL_TEMPERATURE_ENV as TEMPERATURE_ENV
from st_qwen3emb.losses.env import read_variable

DEFAULT_TEMPERATURE = 0.05
DEFAULT_TEACHER_TEMPERATURE = 1.0


def distill_kl_loss(
    student_scores: Tensor, teacher_scores: Tensor, temperature: float = DEFAULT_TEMPERATURE,
    teacher_temperature: float = DEFAULT_TEACHER_TEMPERATURE,
) -> Tensor:
    """``T^2 * mean_i KL(softmax(t_i / T_t) || softmax(s_i / T))`` for ``(batch, 1 + k)`` score matrices."""
    log_student = torch.log_softmax(student_scores / temperature, dim=1)
    teacher = torch.softmax(teacher_scores.detach().to(student_scores.dtype) / teacher_temperature, dim=1)
    kl = (teacher * (torch.log(teacher.clamp_min(torch.finfo(teacher.dtype).tiny)) - log_student)).sum(dim=1)
    return kl.mean() * temperature**2


def resolve_temperatures(temperature: float | None, teacher_temperature: float | None) -> tuple[float, float]:
    """Keyword, else the ``DISTILL_*`` variable, else the default; both must be positive."""
    student = temperature if temperature is not None else read_variable(TEMPERATURE_ENV)
    teacher = teacher_temperature if teacher_temperature is not None else read_variable(TEACHER_TEMPERATURE_ENV)
    student = DEFAULT_TEMPERATURE if student is None else student
    teacher = DEFAULT_TEACHER_TEMPERATURE if teacher is None else teacher
    for name, value in ((TEMPERATURE_ENV, student), (TEACHER_TEMPERATURE_ENV, teacher)):
        if not value > 0:
            raise ValueError(f"{name} (distill_kl temperature) must be > 0, got {value}")
    return student, teacher


def environment(loss_type: str) -> dict[str, Any]:
    """The ``DISTILL_*`` settings in effect now (variable or default), by variable name (``LossSpec.env_values``)."""
    return dict(zip((TEMPERATURE_ENV, TEACHER_TEMPERATURE_ENV), resolve_temperatures(None, None), strict=True))


def teacher_labels(labels: Tensor | None, batch: int, columns: int, loss_name: str) -> Tensor:
    """The ``(batch, columns - 1)`` teacher scores; a clear error when the rows carry none or the wrong count."""
    if labels is None:
        raise ValueError(
            f"{loss_name} needs the teacher's scores of each row's documents (a 'scores' list, e.g. from "
            "'st-qwen3emb mine --scores'); the batch has no labels"
        )
    if columns < 3:
        raise ValueError(f"{loss_name} needs anchor, positive and at least one negative column, got {columns}")
    if labels.ndim != 2 or tuple(labels.shape) != (batch, columns - 1):
        raise ValueError(
            f"{loss_name} expects {columns - 1} teacher scores per row (positive + {columns - 2} negatives), got "
            f"labels of shape {tuple(labels.shape)}"
        )
    return labels


class DistillKLLoss(DistillKLDivLoss):
    """``distill_kl`` on a SentenceTransformer: sentence-transformers' ``DistillKLDivLoss`` with cosine scores and
    the student/teacher temperatures above. Inputs: (anchor, positive, negative_1..k) with ``1 + k`` teacher scores.
    """

    def __init__(
        self, model: nn.Module, *, temperature: float | None = None, teacher_temperature: float | None = None
    ) -> None:
        student, teacher = resolve_temperatures(temperature, teacher_temperature)
        super().__init__(
            model, similarity_fct=pairwise_cos_sim, temperature=student, student_temperature=student,
            teacher_temperature=teacher,
        )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        from st_qwen3emb.losses._forward import embed_columns

        columns = list(sentence_features)
        embeddings = embed_columns(self.model, columns)
        labels = teacher_labels(labels, embeddings[0].shape[0], len(columns), "distill_kl")
        return self.compute_loss_from_embeddings(embeddings, labels.to(embeddings[0].dtype))

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "similarity_fct": "cos_sim",
            "temperature": self.student_temperature,
            "teacher_temperature": self.teacher_temperature,
            "formula": "T^2 * mean KL(softmax(teacher / T_t) || softmax(cos / T))",
        }
