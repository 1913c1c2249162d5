"""Checks that depend on the chosen loss, run on all records before any training starts.

Format problems (bad JSON, wrong types, empty texts) are caught by the readers; here we check that the rows fit
the loss: a positive where the loss needs pairs, a label where it needs one, of the right kind and range, and no
negative identical to the row's positive (swift rejects that too: it would teach the model to push a text away
from itself).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .records import ProblemCollector, Record, location
from .requirements import DataRequirements

logger = logging.getLogger(__name__)

_LABEL_KINDS = {
    "similarity": "a similarity in [0, 1] (STS scores divided by 5)",
    "binary": "0 (dissimilar) or 1 (similar)",
    "teacher_scores": "a 'scores' list: the teacher's score of the positive, then of each negative",
}


def validate_for_loss(records: Sequence[Record], req: DataRequirements, source: str) -> None:
    """Raise ``DatasetValidationError`` listing the first problems and their count; warn about zero labels."""
    problems = ProblemCollector(source)
    if not records:
        problems.add(f"{source}: no rows")
    zero_labels = 0
    for rec in records:
        if not rec.positives:
            problems.add(f"{rec.where('positive')}: missing; loss {req.loss_type!r} needs an anchor and a positive")
        if req.needs_label:
            _check_label(rec, req, problems)
        elif rec.label == 0.0:
            zero_labels += 1
        if req.takes_negatives:
            positives = set(rec.positives)
            for neg in rec.negatives:
                if neg in positives:
                    problems.add(f"{rec.where('negative')}: a negative is identical to the positive ({neg[:60]!r})")
                    break
    problems.raise_if_any()
    if zero_labels and req.takes_negatives:
        # swift derives infonce groups from non-zero labels, so a 0 label silently corrupts its batches. We keep
        # every row as its own (anchor, positive) group; a 0 label likely means the pair is not similar at all.
        logger.warning(
            "%d rows of %s have label 0; %s ignores labels and treats every (anchor, positive) as a positive pair. "
            "Drop dissimilar pairs first (e.g. the 'positive' subset of STS data).",
            zero_labels, source, req.loss_type,
        )


def _check_label(rec: Record, req: DataRequirements, problems: ProblemCollector) -> None:
    kind = _LABEL_KINDS.get(req.label_kind or "", "a number")
    if req.label_kind == "teacher_scores":
        if rec.scores is None:
            problems.add(f"{location(rec.source, rec.row, 'scores', rec.unit)}: missing; loss {req.loss_type!r} needs {kind} "
                         "(write it with 'st-qwen3emb mine --scores')")
        elif len(rec.scores) != 1 + len(rec.negatives) or not rec.negatives:
            problems.add(f"{location(rec.source, rec.row, 'scores', rec.unit)}: {len(rec.scores)} scores for 1 positive "
                         f"and {len(rec.negatives)} negatives; loss {req.loss_type!r} needs one score per document "
                         "and at least one negative")
        return
    if rec.label is None:
        problems.add(f"{rec.where('label')}: missing; loss {req.loss_type!r} needs a label: {kind}")
    elif req.label_kind == "similarity" and not 0.0 <= rec.label <= 1.0:
        problems.add(f"{rec.where('label')}: {rec.label:g} is outside [0, 1]; loss {req.loss_type!r} needs {kind}")
    elif req.label_kind == "binary" and rec.label not in (0.0, 1.0):
        problems.add(f"{rec.where('label')}: {rec.label:g} is not 0 or 1; loss {req.loss_type!r} needs {kind}")
