"""What each loss needs from the data: the one place the data layer asks.

The losses package owns these facts (``st_qwen3emb.losses.loss_spec``); this module adapts its answer to the
small view the data layer uses. Until the losses package provides ``loss_spec``, the table below stands in for
it (same names, same facts as ``swift-reference.md``), and is to be deleted once it does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DataRequirements:
    loss_type: str
    needs_label: bool  # the loss reads a label column
    label_kind: str | None  # "similarity" (float in [0, 1]), "binary" (0/1), "score" (any float), None
    takes_negatives: bool  # negative_1..k columns are passed to the loss
    task: str = "embedding"  # "reranker" losses do not read INFONCE_* variables


_FALLBACK = {
    "cosine_similarity": DataRequirements("cosine_similarity", True, "similarity", False),
    "contrastive": DataRequirements("contrastive", True, "binary", False),
    "online_contrastive": DataRequirements("online_contrastive", True, "binary", False),
    "cosent": DataRequirements("cosent", True, "score", False),
    "angle": DataRequirements("angle", True, "score", False),
    "infonce": DataRequirements("infonce", False, None, True),
    "cached_infonce": DataRequirements("cached_infonce", False, None, True),
}


def data_requirements(loss_type: str) -> DataRequirements:
    try:
        from st_qwen3emb.losses import loss_spec
    except ImportError:
        loss_spec = None
    if loss_spec is not None:
        spec = loss_spec(loss_type)
        return DataRequirements(
            loss_type,
            bool(spec.needs_label),
            spec.label_kind,
            bool(spec.negatives),
            spec.task,
        )
    if loss_type not in _FALLBACK:
        raise ValueError(f"unknown loss_type {loss_type!r} for embedding data; known: {', '.join(sorted(_FALLBACK))}")
    return _FALLBACK[loss_type]


def hard_negatives_setting(explicit: int | None) -> int | None:
    """``hard_negatives=`` if given, else ``INFONCE_HARD_NEGATIVES``, else None (the losses' option resolution)."""
    try:
        from st_qwen3emb.losses.env import resolve_infonce_options
    except ImportError:
        resolve_infonce_options = None
    if resolve_infonce_options is not None:
        return resolve_infonce_options(hard_negatives=explicit).hard_negatives
    if explicit is not None:
        value = explicit
    else:
        text = os.environ.get("INFONCE_HARD_NEGATIVES", "").strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"INFONCE_HARD_NEGATIVES={text!r} is not an integer") from None
    if value < 0:
        raise ValueError(f"hard_negatives must be >= 0, got {value}")
    return value
