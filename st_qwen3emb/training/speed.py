"""Training speed-ups that keep the math: the same loss, the same gradients, the same optimizer steps.

**Row-wise word-embedding gradient.** Qwen3's vocabulary has 151,669 rows. On every backward pass PyTorch's
dense embedding backward allocates a fresh ``vocab x hidden`` gradient (155 MB at hidden 256, 620 MB at the
0.6B model's 1024), zero-fills it and scatters the batch's few hundred token rows into it; under gradient
accumulation it then adds that whole tensor into ``weight.grad``. On a CPU this dominates a training step of a
small model (PyTorch's CPU ``index_add_`` walks the whole tensor: ~200 ms for 200 rows of 151,669 x 256).
Here the embedding's backward sums the batch's token rows and writes just those rows of one persistent gradient
buffer, and before the first backward after an optimizer step it zeroes only the rows the previous step
touched. ``weight.grad`` holds exactly what the dense backward would have produced (zeros in untouched rows),
so gradient clipping, AdamW (whose moments still decay on every row) and ``grad_norm`` logs are unchanged.

sentence-transformers and transformers lack this because the dense path is the general one; ``sparse=True``
embeddings give sparse gradients that AdamW cannot take. The fast path is used only where it is exact and
safe: one process (DDP and DeepSpeed hook the dense gradient), a trainable, unshared ``nn.Embedding`` with
default options. ``--embedding_grad dense`` turns it off.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


class _RowGradBuffer:
    """The persistent gradient of one embedding weight, and the rows written since it was last handed out."""

    def __init__(self, weight: nn.Parameter, padding_idx: int | None):
        self.weight = weight
        self.padding_idx = padding_idx
        self.buffer: torch.Tensor | None = None
        self.dirty: list[torch.Tensor] = []

    def accumulate(self, ids: torch.Tensor, grad_rows: torch.Tensor) -> None:
        if self.padding_idx is not None:  # nn.Embedding never trains its padding row
            keep = ids != self.padding_idx
            ids, grad_rows = ids[keep], grad_rows[keep]
        grad = self.weight.grad
        if grad is None:  # first backward after zero_grad(set_to_none=True): reuse the buffer, clean rows only
            if self.buffer is None:
                self.buffer = torch.zeros_like(self.weight)
            elif self.dirty:
                self.buffer[torch.cat(self.dirty).unique()] = 0
            self.dirty.clear()
            self.weight.grad = grad = self.buffer
        elif grad is not self.buffer:
            self.dirty.clear()  # a gradient someone else allocated (or zeroed in place): just add into it
        # Sum repeated tokens on the small per-batch rows, then read-add-write only the touched rows: on CPU,
        # index_add_ into the full vocabulary-sized tensor costs ~1000x more (it walks the whole tensor).
        rows, inverse = ids.unique(return_inverse=True)
        summed = grad_rows.new_zeros(rows.shape[0], grad_rows.shape[1]).index_add_(0, inverse, grad_rows)
        grad.index_copy_(0, rows, grad.index_select(0, rows) + summed.to(grad.dtype))
        self.dirty.append(rows)


class _EmbeddingWithRowGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input_ids: torch.Tensor, weight: torch.Tensor, state: _RowGradBuffer) -> torch.Tensor:
        ctx.save_for_backward(input_ids)
        ctx.state = state
        return F.embedding(input_ids, weight, state.padding_idx)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (input_ids,) = ctx.saved_tensors
        ctx.state.accumulate(input_ids.reshape(-1), grad_output.reshape(-1, grad_output.shape[-1]))
        return None, None, None  # the weight's gradient is already in weight.grad


def _eligible_embedding(model: nn.Module) -> nn.Embedding | None:
    """The transformer's input embedding when the row-wise gradient is exact for it, else None."""
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if callable(get) else None
    if type(embedding) is not nn.Embedding or not embedding.weight.requires_grad:
        return None
    if embedding.max_norm is not None or embedding.scale_grad_by_freq or embedding.sparse:
        return None
    # A weight used elsewhere too (a tied LM head) also gets dense gradients from there: keep it simple.
    uses = sum(1 for _, p in model.named_parameters(remove_duplicate=False) if p is embedding.weight)
    tied = getattr(getattr(model, "config", None), "tie_word_embeddings", False) and hasattr(model, "lm_head")
    return None if uses != 1 or tied else embedding


def find_transformer(model: nn.Module) -> nn.Module | None:
    """The Hugging Face model inside a sentence-transformers model (or the model itself)."""
    first = model[0] if isinstance(model, nn.Sequential) and len(model) else model
    return getattr(first, "model", None) or getattr(first, "auto_model", None) or model


@contextlib.contextmanager
def row_embedding_grad(model: nn.Module, *, enabled: bool = True, world_size: int = 1,
                       deepspeed: Any = None) -> Iterator[bool]:
    """Train ``model`` with the row-wise word-embedding gradient inside the block; yields whether it is on."""
    inner = find_transformer(model)
    embedding = _eligible_embedding(inner) if enabled and world_size == 1 and not deepspeed else None
    if embedding is None:
        yield False
        return
    state = _RowGradBuffer(embedding.weight, embedding.padding_idx)

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return F.embedding(input_ids, embedding.weight, embedding.padding_idx)
        return _EmbeddingWithRowGrad.apply(input_ids, embedding.weight, state)

    embedding.forward = forward  # an instance attribute: the module, its state_dict and saves are untouched
    try:
        yield True
    finally:
        del embedding.forward
