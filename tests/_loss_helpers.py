"""Helpers shared by the loss tests (imported by test_losses.py and test_losses_infonce.py)."""

from __future__ import annotations

import torch
from torch import nn

DIM = 8


class EmbeddingTable(nn.Module):
    """A stand-in SentenceTransformer: feature dict {"emb": rows} -> those rows times a learnable scale vector."""

    def __init__(self, dim: int = DIM) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, dim, dtype=torch.float64))

    def forward(self, features):
        return {"sentence_embedding": features["emb"] * self.scale}

    def get_embedding_dimension(self) -> int:
        return self.scale.numel()


def clear_infonce_env(monkeypatch) -> None:
    """The INFONCE_* variables of the calling shell must not leak into the tests."""
    from st_qwen3emb.losses.env import ENV_VARIABLES

    for name in ENV_VARIABLES.values():
        monkeypatch.delenv(name, raising=False)
