"""What the three pair losses (cosine_similarity, contrastive, online_contrastive) share: two embedded columns and
one float label per pair, checked before any math so a wrong dataset fails with a message instead of broadcasting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn


def pair_embeddings(
    model: nn.Module, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None, loss_name: str
) -> tuple[Tensor, Tensor, Tensor]:
    """Embed the ``anchor`` and ``positive`` columns and return ``(u, v, labels as float)``."""
    from st_qwen3emb.losses._forward import embed_columns

    sentence_features = list(sentence_features)
    if len(sentence_features) != 2:
        raise ValueError(f"{loss_name} takes exactly two text columns (anchor, positive), got {len(sentence_features)}")
    u, v = embed_columns(model, sentence_features)
    return u, v, pair_labels(labels, u.shape[0], loss_name).to(u.dtype)


def pair_labels(labels: Tensor | None, batch_size: int, loss_name: str) -> Tensor:
    """The labels flattened to one per pair; an error when there are none or their count is wrong."""
    if labels is None:
        raise ValueError(f"{loss_name} needs a 'label' column (one float per pair); the batch has no labels")
    if labels.numel() != batch_size:
        raise ValueError(
            f"{loss_name} expects one label per pair ({batch_size}), got {labels.numel()} "
            f"with shape {tuple(labels.shape)}"
        )
    return labels.reshape(-1)
