"""What each loss needs from the data, asked of the losses package (the one place that knows).

``st_qwen3emb.losses.loss_spec`` owns the facts (columns, label kind, negatives); this module reduces its answer
to the small view the data layer uses, and resolves the hard-negative count the way the infonce loss resolves
its options (keyword over ``INFONCE_HARD_NEGATIVES`` over the default).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataRequirements:
    loss_type: str
    needs_label: bool  # the loss reads a label column
    label_kind: str | None  # "similarity" (float in [0, 1]), "binary" (0/1), None
    takes_negatives: bool  # negative_1..k columns are passed to the loss
    task: str = "embedding"  # "reranker" losses do not read INFONCE_* variables


def data_requirements(loss_type: str) -> DataRequirements:
    """The data view of ``loss_spec(loss_type)``; an unknown name raises its ``ValueError`` with a hint."""
    from st_qwen3emb.losses import loss_spec

    spec = loss_spec(loss_type)
    return DataRequirements(loss_type, spec.needs_label, spec.label_kind, spec.negatives, spec.task)


def hard_negatives_setting(explicit: int | None) -> int | None:
    """``hard_negatives=`` if given, else ``INFONCE_HARD_NEGATIVES``, else None (unset: pad to the maximum)."""
    from st_qwen3emb.losses.env import resolve_infonce_options

    return resolve_infonce_options(hard_negatives=explicit).hard_negatives
