"""Tokenise each training text once: a caching ``preprocess_fn`` for sentence-transformers' data collator.

sentence-transformers' collator calls ``model.preprocess`` on every batch, so every text (with its prompt) is
tokenised again in every epoch and every evaluation of the loss. ``TokenCache`` keeps each text's token ids
(unpadded, int32) the first time it is seen and builds later batches from them, padded on the tokenizer's side with
its pad values, exactly as ``model.preprocess`` pads (to the longest row). The cache checks itself: for each new
(prompt, task, max_length) it builds the first batch both ways and compares them tensor for tensor; on any
difference, and for anything that is not a list of plain strings, it steps aside and ``model.preprocess`` does the
work. Evaluators that call ``model.encode`` are not affected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Texts kept at most (about 200 bytes each for a 30-token text); later new texts are tokenised per batch.
MAX_ENTRIES = 1_000_000


class TokenCache:
    """``preprocess_fn(inputs, prompt=None, task=None, **kwargs)`` with each text tokenised once."""

    def __init__(self, preprocess: Callable[..., dict[str, Any]], tokenizer: Any, max_entries: int = MAX_ENTRIES):
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.max_entries = max_entries
        self.rows: dict[tuple, dict[str, np.ndarray]] = {}
        self.layouts: dict[tuple, tuple[tuple[str, ...], dict[str, Any]] | None] = {}  # None: not cacheable
        self.hits = self.misses = 0

    def _pad_values(self, keys: Sequence[str]) -> dict[str, int] | None:
        values = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0,
                  "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0)}
        if any(values.get(key) is None for key in keys):
            return None
        return {key: values[key] for key in keys}

    def _layout(self, out: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        """The token-aligned tensor keys and the per-batch constants of a ``preprocess`` result, if it has the
        plain padded-text shape this cache can rebuild."""
        ids, mask = out.get("input_ids"), out.get("attention_mask")
        if not (isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor) and ids.ndim == 2):
            return None
        keys, meta = [], {}
        for key, value in out.items():
            if isinstance(value, torch.Tensor):
                if value.shape != ids.shape or value.dtype != ids.dtype:
                    return None
                keys.append(key)
            elif isinstance(value, (str, int, float, bool, type(None))):
                meta[key] = value
            else:
                return None
        if self._pad_values(keys) is None or getattr(self.tokenizer, "padding_side", None) not in ("left", "right"):
            return None
        return tuple(keys), meta

    def _store(self, base: tuple, texts: list[str], out: dict[str, Any], keys: tuple[str, ...]) -> None:
        mask = out["attention_mask"].bool()
        for i, text in enumerate(texts):
            if len(self.rows) >= self.max_entries:
                return
            keep = mask[i]
            self.rows[(*base, text)] = {
                key: out[key][i][keep].numpy().astype(np.int32) for key in keys if key != "attention_mask"
            }

    def _assemble(self, base: tuple, texts: Sequence[str], keys: tuple[str, ...], meta: dict[str, Any]) -> dict:
        rows = [self.rows[(*base, text)] for text in texts]
        lengths = [len(row["input_ids"]) for row in rows]
        width = max(lengths) if lengths else 0
        left = self.tokenizer.padding_side == "left"
        pads = self._pad_values(keys)
        batch = {key: np.full((len(rows), width), pads[key], dtype=np.int64) for key in keys}
        for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
            span = slice(width - length, width) if left else slice(0, length)
            for key in keys:
                batch[key][i, span] = 1 if key == "attention_mask" else row[key]
        return {**{key: torch.from_numpy(batch[key]) for key in keys}, **meta}

    def __call__(self, inputs: Sequence[Any], prompt: str | None = None, task: str | None = None, **kwargs: Any):
        if not inputs or not all(isinstance(x, str) for x in inputs) or set(kwargs) - {"max_length"}:
            return self.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        base = (prompt, task, kwargs.get("max_length"))
        if self.layouts.get(base, ()) is None:
            return self.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        texts = list(inputs)
        missing = [t for t in dict.fromkeys(texts) if (*base, t) not in self.rows]
        if base not in self.layouts:  # first batch of this kind: build it both ways and compare
            reference = self.preprocess(texts, prompt=prompt, task=task, **kwargs)
            layout = self._layout(reference)
            if layout is not None:
                self._store(base, texts, reference, layout[0])
                if any((*base, t) not in self.rows for t in texts) or not _same(
                    self._assemble(base, texts, *layout), reference
                ):
                    layout = None
            if layout is None:
                logger.info("tokenise-once cache off for prompt %r: the batch could not be rebuilt exactly", prompt)
            self.layouts[base] = layout
            self.misses += len(texts)
            return reference
        keys, meta = self.layouts[base]
        if missing:
            self._store(base, missing, self.preprocess(missing, prompt=prompt, task=task, **kwargs), keys)
            if any((*base, t) not in self.rows for t in missing):  # cache full
                return self.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        return self._assemble(base, texts, keys, meta)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if set(a) != set(b):
        return False
    for key, value in b.items():
        if isinstance(value, torch.Tensor):
            if not (isinstance(a[key], torch.Tensor) and a[key].dtype == value.dtype and torch.equal(a[key], value)):
                return False
        elif a[key] != value:
            return False
    return True


def cache_tokenisation(trainer: Any, model: Any) -> TokenCache | None:
    """Give ``trainer``'s data collator a ``TokenCache`` around ``model.preprocess``; the cache, or None when the
    collator or the model has no place for it (custom collators, models without a tokenizer)."""
    collator = getattr(trainer, "data_collator", None)
    tokenizer = getattr(model, "tokenizer", None)
    if collator is None or not hasattr(collator, "preprocess_fn") or tokenizer is None:
        return None
    if not getattr(tokenizer, "is_fast", False):
        return None
    cache = TokenCache(collator.preprocess_fn, tokenizer)
    collator.preprocess_fn = cache
    return cache
