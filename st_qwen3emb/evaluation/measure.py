"""Count the texts a model actually encodes, and the time it takes, for the evaluation summary.

Counting at ``SentenceTransformer.preprocess`` (called once per batch by ``encode``) measures what really
went through the encoder, whichever evaluator (ours, sentence-transformers', mteb's) drove it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Measurement:
    num_texts: int = 0
    seconds: float = 0.0


@contextmanager
def measure_encoding(model: Any) -> Iterator[Measurement]:
    """Within the block, count inputs passed to ``model.preprocess``; ``seconds`` is the block's wall time."""
    measurement = Measurement()
    own = vars(model).get("preprocess")  # an instance-level wrapper set before us, kept in place after
    inner = model.preprocess

    def counting_preprocess(inputs, *args, **kwargs):
        measurement.num_texts += len(inputs)
        return inner(inputs, *args, **kwargs)

    model.preprocess = counting_preprocess
    start = time.perf_counter()
    try:
        yield measurement
    finally:
        measurement.seconds = time.perf_counter() - start
        if own is None:
            del model.preprocess
        else:
            model.preprocess = own
