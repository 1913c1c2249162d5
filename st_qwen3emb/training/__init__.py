"""Training: ``train(config) -> Path`` (the run folder) and the ``st-qwen3emb sft`` command line.

Imports are lazy so that ``st-qwen3emb sft --help`` and ``import st_qwen3emb.training`` stay instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from st_qwen3emb.config import RunConfig


def train(config: RunConfig) -> Path:
    """Train as ``swift sft`` would and return the run folder; see ``st_qwen3emb.training.sft.train``."""
    from st_qwen3emb.training.sft import train as _train

    return _train(config)


__all__ = ["train"]
