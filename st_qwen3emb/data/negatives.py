"""Give every row the same number of hard negatives, so they fit fixed ``negative_1..negative_k`` columns.

Policy (swift's ``INFONCE_HARD_NEGATIVES`` semantics, minus its defect):

- ``k`` given: rows with more than ``k`` negatives keep their first ``k`` (files usually list the hardest first);
  rows with fewer are padded by drawing from the row's **own negatives**, with replacement. swift pads from the
  sample's rows including its positive, so it can train a text to repel its own positive; we never do. A row with
  no negatives at all cannot be padded and is an error (``k=0`` drops all negatives instead).
- ``k`` unset: every row is padded, as above, up to the largest count in the dataset. A row with no negatives
  while others have some is an error that suggests ``INFONCE_HARD_NEGATIVES``.

Draws come from one ``random.Random(seed)`` walked in row order, so the result is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .records import ProblemCollector, Record


def fit_negatives(records: Sequence[Record], k: int | None, seed: int, source: str) -> list[list[str]]:
    """The negatives of each record, truncated or padded to one count (see the module docstring)."""
    target = max((len(r.negatives) for r in records), default=0) if k is None else k
    problems = ProblemCollector(source)
    rng = random.Random(seed)
    fitted: list[list[str]] = []
    for rec in records:
        if target == 0:
            fitted.append([])
            continue
        positives = set(rec.positives)
        pool = [n for n in rec.negatives if n not in positives]
        if not pool:
            why = f"INFONCE_HARD_NEGATIVES={k}" if k is not None else f"other rows have up to {target}"
            problems.add(
                f"{rec.where('negative')}: the row has no negatives but {why}; give every row negatives, or set "
                "INFONCE_HARD_NEGATIVES=0 (or hard_negatives=0) to train with in-batch negatives only"
            )
            continue
        if len(pool) >= target:
            fitted.append(pool[:target])
        else:
            fitted.append(pool + rng.choices(pool, k=target - len(pool)))
    problems.raise_if_any()
    return fitted
