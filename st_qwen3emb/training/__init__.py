"""Training: ``train(config) -> Path`` (the run folder); ``sft`` is the embedding path, ``run`` what both share.

Imports are lazy so that ``st-qwen3emb sft --help`` and ``import st_qwen3emb.training`` stay instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from st_qwen3emb.config import RunConfig


def train(config: RunConfig) -> Path:
    """Train as ``swift sft`` would and return the run folder: ``training.sft.train`` for embeddings,
    ``reranker.train.train_reranker`` for rerankers (``config.TASK_ENTRY_POINTS``)."""
    from st_qwen3emb.config import task_entry_point, validate

    validate(config)
    return task_entry_point(config.task_type, "train")(config)


__all__ = ["train"]
