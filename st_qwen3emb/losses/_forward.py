"""How a loss embeds its columns: one forward pass for all of them when that costs no extra padding.

sentence-transformers' ``embed_columns`` merges the candidate columns into one forward pass but keeps the first
(anchor) column apart, for short queries against long documents. When the anchor column is about as wide as the
others (STS pairs, paraphrases, most swift embedding data), one pass over every row is cheaper: fewer passes through
the vocabulary-sized embedding and the layers, less per-pass overhead. The choice changes speed only; the
embeddings are the same (padding is masked, and RoPE attention depends on relative positions only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

# Merge when the padded merged batch is at most this much larger than the separate ones together.
MERGE_SLACK = 1.15


def _shape(features: dict[str, Any]) -> tuple[int, int] | None:
    ids = features.get("input_ids")
    return (int(ids.shape[0]), int(ids.shape[1])) if ids is not None and getattr(ids, "ndim", 0) == 2 else None


def merge_anchor(features_list: list[dict[str, Any]]) -> bool:
    """Whether the anchor column should join the others' forward pass (padded tokens: merged vs separate)."""
    shapes = [_shape(f) for f in features_list]
    if len(shapes) < 2 or any(s is None for s in shapes):
        return False
    rows = sum(r for r, _ in shapes)
    widest = max(w for _, w in shapes)
    widest_candidate = max(w for _, w in shapes[1:])
    separate = shapes[0][0] * shapes[0][1] + sum(r for r, _ in shapes[1:]) * widest_candidate
    return rows * widest <= MERGE_SLACK * separate


def embed_columns(model: nn.Module, features_list: list[dict[str, Any]]) -> list[Tensor]:
    """One ``sentence_embedding`` per column, from as few forward passes as padding allows."""
    from sentence_transformers.base.losses.merged_forward import embed_columns as st_embed_columns

    return st_embed_columns(model, features_list, separate_first=not merge_anchor(features_list))
