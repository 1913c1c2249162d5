"""swift's reranker losses (``pointwise_reranker``, ``listwise_reranker``) for a sentence-transformers CrossEncoder.

A training row is one group: ``anchor`` (the query), ``positive``, then ``negative_1..negative_k`` (``""`` where a
group has fewer negatives), as built by ``st_qwen3emb.reranker.data``. Each (query, document) pair is scored by the
CrossEncoder as the logit ``z_yes - z_no`` (the ``LogitScore`` head; no sigmoid in training).

- pointwise: ``BCEWithLogits(z, label)`` averaged over every (query, document) row of the batch, label 1 for the
  positive and 0 for each negative. This is exactly sentence-transformers' ``BinaryCrossEntropyLoss`` (identity
  activation, no ``pos_weight``), which does the work here; this module only flattens the groups into its
  pair/label rows (tested equal on fixed logits).
- listwise: per group ``cross_entropy(z / T, target = the positive)``, groups smaller than the minimum size
  skipped, mean over groups. sentence-transformers has no loss with this math (``ListNetLoss`` soft-maxes the labels,
  ``CrossEntropyLoss`` is per-pair classification, ``MultipleNegativesRankingLoss`` adds in-batch negatives), so it
  is written here as a pure function.

Environment variables, as in swift, read at each call unless the option was given as a keyword (how they are read:
``st_qwen3emb.losses.env``):

| variable | option | default |
| --- | --- | --- |
| ``LISTWISE_RERANKER_TEMPERATURE`` | ``temperature`` | 1.0 |
| ``LISTWISE_RERANKER_MIN_GROUP_SIZE`` | ``min_group_size`` | 2 |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from st_qwen3emb.losses.env import LISTWISE_MIN_GROUP_SIZE_ENV as MIN_GROUP_SIZE_ENV
from st_qwen3emb.losses.env import LISTWISE_TEMPERATURE_ENV as TEMPERATURE_ENV
from st_qwen3emb.losses.env import read_variable

DEFAULT_TEMPERATURE = 1.0
DEFAULT_MIN_GROUP_SIZE = 2


def listwise_options(temperature: float | None = None, min_group_size: int | None = None) -> tuple[float, int]:
    """The listwise temperature and minimum group size: the argument, else the variable, else swift's default."""
    if temperature is None:
        temperature = read_variable(TEMPERATURE_ENV)
    if min_group_size is None:
        min_group_size = read_variable(MIN_GROUP_SIZE_ENV)
    return (
        DEFAULT_TEMPERATURE if temperature is None else temperature,
        DEFAULT_MIN_GROUP_SIZE if min_group_size is None else min_group_size,
    )


def environment(loss_type: str) -> dict[str, Any]:
    """The reranker settings in effect now (variable or default), by variable name: the group sampling, and for
    ``listwise_reranker`` its temperature and minimum group size (``LossSpec.env_values`` of both reranker losses)."""
    from st_qwen3emb.losses.env import MAX_NEGATIVE_ENV, MAX_POSITIVE_ENV
    from st_qwen3emb.reranker.data import sample_limits

    env: dict[str, Any] = dict(zip((MAX_POSITIVE_ENV, MAX_NEGATIVE_ENV), sample_limits(), strict=True))
    if loss_type == "listwise_reranker":
        env[TEMPERATURE_ENV], env[MIN_GROUP_SIZE_ENV] = listwise_options()
    return env


# --- pure math on fixed logits ------------------------------------------------------------------------------
def pointwise_reranker_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean ``BCEWithLogits(logits, labels)`` over all (query, document) rows."""
    return nn.functional.binary_cross_entropy_with_logits(logits.view(-1).float(), labels.view(-1).float())


def listwise_reranker_loss(
    logits: Tensor,
    group_sizes: Sequence[int],
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> Tensor:
    """Mean over groups of ``cross_entropy(group / temperature, 0)``; each group is its positive then its negatives.

    ``logits`` holds the groups back to back (sizes ``group_sizes``). Groups with fewer than ``min_group_size``
    documents are skipped; when all are, the loss is a zero that still carries the graph.
    """
    if not temperature > 0:
        raise ValueError(f"listwise reranker temperature must be > 0, got {temperature}")
    logits = logits.view(-1).float()
    if sum(group_sizes) != logits.numel():
        raise ValueError(f"group sizes {list(group_sizes)} do not add up to the {logits.numel()} logits")
    losses = []
    for group in torch.split(logits, list(group_sizes)):
        if group.numel() < max(min_group_size, 1):
            continue
        target = torch.zeros(1, dtype=torch.long, device=group.device)
        losses.append(nn.functional.cross_entropy(group.unsqueeze(0) / temperature, target))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


# --- modules for CrossEncoderTrainer ---------------------------------------------------------------------------
def groups_from_columns(inputs: Sequence[Sequence[str | None]]) -> tuple[list[tuple[str, str]], list[int]]:
    """(query, document) pairs, each group's positive first, and the group sizes, from the column lists
    ``[anchors, positives, negatives_1, ...]``; ``None``/empty negatives (padding) are dropped."""
    if len(inputs) < 2:
        raise ValueError(
            f"a reranker loss needs the columns anchor, positive[, negative_1..k]; got {len(inputs)} column(s)"
        )
    anchors, *documents = inputs
    pairs: list[tuple[str, str]] = []
    sizes: list[int] = []
    for row, query in enumerate(anchors):
        docs = [column[row] for column in documents]
        if not docs[0]:
            raise ValueError(f"reranker batch row {row + 1} has no positive document")
        group = [docs[0], *(d for d in docs[1:] if d)]
        pairs.extend((query, doc) for doc in group)
        sizes.append(len(group))
    return pairs, sizes


class _RerankerLoss(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from sentence_transformers import CrossEncoder

        if not isinstance(model, CrossEncoder) or model.num_labels != 1:
            raise ValueError(f"{type(self).__name__} needs a CrossEncoder with one output (a reranker)")
        self.model = model

    def score_groups(self, inputs: Sequence[Sequence[str | None]], prompt: str | None, task: str | None):
        from sentence_transformers.util import batch_to_device

        pairs, sizes = groups_from_columns(inputs)
        features = batch_to_device(self.model.preprocess(pairs, prompt=prompt, task=task), self.model.device)
        return self.model(features)["scores"].view(-1), pairs, sizes


class PointwiseRerankerLoss(_RerankerLoss):
    """swift's ``pointwise_reranker``: sentence-transformers' ``BinaryCrossEntropyLoss`` over every group's pairs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

        self.bce = BinaryCrossEntropyLoss(model)

    def forward(
        self, inputs: Sequence[Sequence[str | None]], labels: Any = None, prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        pairs, sizes = groups_from_columns(inputs)
        targets = torch.tensor([1.0 if i == 0 else 0.0 for size in sizes for i in range(size)], device=self.model.device)
        queries, documents = [p[0] for p in pairs], [p[1] for p in pairs]
        return self.bce([queries, documents], targets, prompt=prompt, task=task)

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": "pointwise_reranker"}


class ListwiseRerankerLoss(_RerankerLoss):
    """swift's ``listwise_reranker``: per-group cross-entropy with the positive as target (see the module doc)."""

    def __init__(self, model: nn.Module, *, temperature: float | None = None, min_group_size: int | None = None) -> None:
        super().__init__(model)
        self.temperature = temperature
        self.min_group_size = min_group_size

    def options(self) -> tuple[float, int]:
        """The temperature and minimum group size for this call (keyword, else environment, else default)."""
        return listwise_options(self.temperature, self.min_group_size)

    def forward(
        self, inputs: Sequence[Sequence[str | None]], labels: Any = None, prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        temperature, min_size = self.options()
        logits, _, sizes = self.score_groups(inputs, prompt, task)
        return listwise_reranker_loss(logits, sizes, temperature=temperature, min_group_size=min_size)

    def get_config_dict(self) -> dict[str, Any]:
        temperature, min_size = self.options()
        return {"loss": "listwise_reranker", "temperature": temperature, "min_group_size": min_size}
