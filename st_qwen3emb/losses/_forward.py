"""How a loss embeds its columns: every row of every column in a few forward passes, each padded only to its own
longest row.

sentence-transformers' collator pads each column to that column's longest text, and its ``embed_columns`` keeps the
anchor column in a pass of its own and pads the other columns to their common width. In a batch of mixed lengths
most of the tokens the layers process are then padding: compute, and activation memory, spent on nothing. Here the
rows of all columns are sorted by length and cut into contiguous length buckets; each bucket is one forward pass
padded to its own longest row. The cut points minimise ``padded tokens + PASS_COST_TOKENS per pass`` exactly (a
small dynamic programme over the distinct lengths), so uniform batches still run as one pass and mixed ones split
where that pays. The embeddings are put back in column and row order, so the loss sees the same batch: the choice
changes speed and memory only. Padding is masked and RoPE attention depends on relative positions only, so a row's
embedding does not depend on how much padding it got (to float rounding; ``tests/test_forward.py``).

sentence-transformers lacks this because its losses must also serve multimodal and flattened (flash-attention
varlen) batches; those, and any batch that is not a plain padded token batch, fall back to its ``embed_columns``.
With ``--attn_impl flash_attention_2`` on a GPU, sentence-transformers flattens text batches itself (no padding at
all) and that path is used unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from torch import Tensor, nn

# What one more forward pass costs, in padded tokens it must save to pay for itself: per-pass overhead (kernel
# launches, Python, the embedding lookup) against per-token compute. CPUs pay little per pass; GPUs run small passes
# at a fraction of their throughput.
PASS_COST_TOKENS = {"cpu": 64, "other": 2048}


def plan_buckets(lengths: list[int], pass_cost: int) -> list[int]:
    """End indices (exclusive) of the buckets over ``lengths`` sorted ascending, minimising padded tokens plus
    ``pass_cost`` per bucket. A bucket never splits rows of equal length, which loses nothing: the cost only
    depends on the bucket's row count and its longest row."""
    if not lengths:
        return []
    # Ends of runs of equal length: the only cut points worth considering.
    ends = [i + 1 for i in range(len(lengths)) if i + 1 == len(lengths) or lengths[i + 1] != lengths[i]]
    best = [0.0] + [float("inf")] * len(ends)  # best[k]: cheapest plan for rows[:ends[k-1]]
    cut = [0] * (len(ends) + 1)
    for k, end in enumerate(ends, start=1):
        width = lengths[end - 1]
        for j in range(k):
            start = ends[j - 1] if j else 0
            cost = best[j] + (end - start) * width + pass_cost
            if cost < best[k]:
                best[k], cut[k] = cost, j
    plan, k = [], len(ends)
    while k:
        plan.append(ends[k - 1])
        k = cut[k]
    return plan[::-1]


def _padding_side(mask: Tensor) -> str | None:
    """``"left"`` or ``"right"`` when every row of the batch is padded on that side, ``"none"`` when no row is
    padded, else None."""
    if bool(mask.all()):
        return "none"
    if bool(mask[:, -1].all()):
        return "left"
    if bool(mask[:, 0].all()):
        return "right"
    return None


def _fit(tensor: Tensor, width: int, side: str) -> Tensor:
    """``tensor`` (rows x tokens) cropped or zero-padded to ``width`` tokens on the padding side."""
    extra = width - tensor.shape[1]
    if side == "left":
        return tensor[:, -width:] if extra <= 0 else F.pad(tensor, (extra, 0))
    return tensor[:, :width] if extra <= 0 else F.pad(tensor, (0, extra))


def _token_batches(features_list: list[dict[str, Any]]) -> tuple[list[str], str, dict[str, Any]] | None:
    """The token-aligned keys, the padding side and the shared metadata, or None when the columns are not plain
    padded token batches that can be re-cut by rows."""
    first = features_list[0]
    if any(set(f) != set(first) for f in features_list) or "cu_seq_lens_q" in first or "prompt_length" in first:
        return None
    token_keys, shared, sides = [], {}, []
    for features in features_list:
        ids, mask = features.get("input_ids"), features.get("attention_mask")
        if not (isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor) and ids.ndim == 2):
            return None
        if mask.shape != ids.shape or ids.shape[1] == 0:
            return None
        side = _padding_side(mask)
        if side is None:
            return None
        sides.append(side)
    for key, value in first.items():
        if isinstance(value, torch.Tensor):
            if any(f[key].shape != f["input_ids"].shape for f in features_list):
                return None  # images, per-row floats...: not token-aligned
            token_keys.append(key)
        else:
            try:
                if any(bool(f[key] != value) for f in features_list[1:]):
                    return None
            except (RuntimeError, ValueError, TypeError):
                return None
            shared[key] = value
    padded = set(sides) - {"none"}  # an unpadded column fits either side
    if len(padded) > 1:
        return None
    return token_keys, padded.pop() if padded else "left", shared


def embed_columns(model: nn.Module, features_list: list[dict[str, Any]]) -> list[Tensor]:
    """One ``sentence_embedding`` per column, from length-bucketed forward passes (see the module docstring)."""
    features_list = list(features_list)
    layout = _token_batches(features_list) if features_list else None
    if layout is None:
        from sentence_transformers.base.losses.merged_forward import embed_columns as st_embed_columns

        return st_embed_columns(model, features_list)
    token_keys, side, shared = layout
    # Every row of every column, by (length, column, row): one global order to cut into buckets.
    lengths = torch.cat([f["attention_mask"].sum(dim=1) for f in features_list])
    column_sizes = [int(f["input_ids"].shape[0]) for f in features_list]
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = lengths[order].tolist()
    device = features_list[0]["input_ids"].device
    cost = PASS_COST_TOKENS["cpu" if device.type == "cpu" else "other"]
    offsets = torch.tensor([0, *column_sizes]).cumsum(0).tolist()

    outputs, start = [], 0
    for end in plan_buckets(sorted_lengths, cost):
        rows = order[start:end].sort().values  # ascending index: column by column, rows in order
        width = max(int(sorted_lengths[end - 1]), 1)
        bucket: dict[str, Any] = dict(shared)
        for key in token_keys:
            parts = []
            for column, features in enumerate(features_list):
                local = rows[(rows >= offsets[column]) & (rows < offsets[column + 1])] - offsets[column]
                if local.numel():
                    parts.append(_fit(features[key][local.to(device)], width, side))
            bucket[key] = torch.cat(parts)
        outputs.append((rows, model(bucket)["sentence_embedding"]))
        start = end
    placed = torch.cat([rows for rows, _ in outputs])  # the global index of each embedding row, in output order
    embeddings = torch.cat([emb for _, emb in outputs])[torch.argsort(placed).to(device)]
    return list(embeddings.split(column_sizes))
