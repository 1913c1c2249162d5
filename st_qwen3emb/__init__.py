"""st-qwen3emb: fine-tune Qwen3-Embedding and Qwen3-Reranker models on the sentence-transformers stack.

The public names below are imported lazily, so ``import st_qwen3emb`` (and ``st-qwen3emb --help``) does not
pay for torch, transformers or mteb until a function that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "load_model": "st_qwen3emb.model",
    "apply_qwen3_protocol": "st_qwen3emb.model",
    "ModelLoadError": "st_qwen3emb.model",
    "load_reranker": "st_qwen3emb.reranker.model",
    "build_loss": "st_qwen3emb.losses",
    "load_dataset": "st_qwen3emb.data",
    "DatasetValidationError": "st_qwen3emb.data",
    "train": "st_qwen3emb.training",
    "export": "st_qwen3emb.export",
    "write_model_card": "st_qwen3emb.model_card",
    "push_to_hub": "st_qwen3emb.hub",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'st_qwen3emb' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
