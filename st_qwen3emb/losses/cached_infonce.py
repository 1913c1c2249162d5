"""``cached_infonce``: the ``infonce`` loss with gradient caching (GradCache), so a large batch — and so many in-batch
negatives — fits in the memory of a small one.

Columns, labels, options and formula: exactly those of ``infonce`` (``st_qwen3emb.losses.infonce``); the loss and
the gradients are equal to the uncached loss (up to float rounding), only memory and time differ.

How: (1) embed every column in mini-batches of ``mini_batch_size`` rows without a graph, remembering each
mini-batch's random state; (2) compute the InfoNCE loss on the cached embeddings and back-propagate it to them;
(3) during the outer backward pass, re-embed each mini-batch with a graph under its saved random state (same dropout
masks) and back-propagate the cached embedding gradients through it. Steps (1) and (3) are sentence-transformers'
``CachedLossMixin`` (also behind its CachedMultipleNegativesRankingLoss), reused here; the loss in step (2) is ours.
That also makes ``MatryoshkaLoss`` (``mrl_dims``) work with it, through the mixin's ``calculate_loss`` hook.

Sources: Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (arXiv:2101.06983);
sentence-transformers' gradient-cache machinery; swift's infonce math (ms-swift ``swift/loss/embedding.py``). Swift has no cached
variant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from torch import Tensor, nn

from st_qwen3emb.losses.infonce import InfoNCELoss


class CachedInfoNCELoss(CachedLossMixin, InfoNCELoss):
    """``infonce`` with GradCache; ``mini_batch_size`` rows are embedded at a time. Other keywords as ``InfoNCELoss``."""

    def __init__(self, model: nn.Module, *, mini_batch_size: int = 32, **options: Any) -> None:
        InfoNCELoss.__init__(self, model, **options)
        if int(mini_batch_size) < 1:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size}")
        self.mini_batch_size = int(mini_batch_size)
        self._call_options = self.options

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        # One resolution per call, shared by the column selection here and calculate_loss in the mixin.
        self._call_options = self.options
        columns = self.select_columns(list(sentence_features), self._call_options)
        return self.forward_cached(columns, labels)

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        embeddings = [torch.cat(column) for column in reps]
        loss = self.loss_from_embeddings(embeddings, self._call_options)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}

    @property
    def citation(self) -> str:
        return """
@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""
