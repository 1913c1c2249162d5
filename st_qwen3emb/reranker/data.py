"""Reranker training and evaluation data, built from the format-neutral ``Record`` view (``read_records``).

swift's reranker data: per query up to ``MAX_POSITIVE_SAMPLES`` (default 1) positives, each followed by up to
``MAX_NEGATIVE_SAMPLES`` (default 7) negatives; a query with more is sampled (seeded), one with fewer keeps what it
has. Each (positive, negatives) group becomes one row ``anchor, positive, negative_1..negative_k`` (``""`` pads
shorter groups), which ``st_qwen3emb.reranker.losses`` turns into labelled pairs (1 for the positive, 0 for each
negative). Every format ``read_records`` understands works: swift 3.x ``query/response/rejected_response``, 4.x
``messages/positive_messages/negative_messages``, and BEIR retrieval folders.

The maniscope adapter: ``../shared/data/retrieval/maniscope_<name>_rerank10/`` is a BEIR folder (``corpus.jsonl``,
``queries.jsonl``, ``qrels/test.tsv``) plus ``candidates.jsonl``: ten candidate documents per query, of which the
qrels mark the relevant ones (one for most sets; fiqa, fever, msmarco and trec-covid have several). Only a
``test`` split exists, so the spec is ``<folder>:test`` (``maniscope_spec``). A query's relevant candidates are
its positives and the other candidates its negatives, so for training each query gives
``min(#relevant, MAX_POSITIVE_SAMPLES)`` groups of one positive and up to 7 of the 9 other candidates, and for
evaluation (``reranking_samples``) the whole candidate list is re-ranked and scored by MRR@10 / nDCG@10.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from st_qwen3emb.data.loader import read_records
from st_qwen3emb.data.records import DatasetValidationError, Record
from st_qwen3emb.losses.env import MAX_NEGATIVE_ENV, MAX_POSITIVE_ENV, read_variable

if TYPE_CHECKING:
    import datasets

DEFAULT_MAX_POSITIVES = 1
DEFAULT_MAX_NEGATIVES = 7


def maniscope_spec(folder: str | Path) -> str:
    """The dataset spec of a maniscope ``*_rerank10`` folder (its only qrels split is ``test``)."""
    folder = Path(folder)
    if not (folder / "candidates.jsonl").is_file() or not (folder / "qrels" / "test.tsv").is_file():
        raise DatasetValidationError(f"{folder}: not a maniscope rerank folder (needs candidates.jsonl, qrels/test.tsv)")
    return f"{folder}:test"


def sample_limits(max_positives: int | None = None, max_negatives: int | None = None) -> tuple[int, int]:
    """The positive/negative caps: the argument, else swift's environment variable, else its default."""
    positives = max_positives if max_positives is not None else read_variable(MAX_POSITIVE_ENV)
    negatives = max_negatives if max_negatives is not None else read_variable(MAX_NEGATIVE_ENV)
    positives = DEFAULT_MAX_POSITIVES if positives is None else positives
    negatives = DEFAULT_MAX_NEGATIVES if negatives is None else negatives
    if positives < 1 or negatives < 0:
        raise ValueError(f"{MAX_POSITIVE_ENV} must be >= 1 and {MAX_NEGATIVE_ENV} >= 0; got {positives}, {negatives}")
    return positives, negatives


def _take(items: list[str], limit: int, rng: random.Random) -> list[str]:
    return items if len(items) <= limit else rng.sample(items, limit)


def reranker_groups(
    records: Iterable[Record], *, max_positives: int | None = None, max_negatives: int | None = None, seed: int = 42
) -> list[tuple[str, str, list[str]]]:
    """``(query, positive, negatives)`` groups, swift's sampling; a record without a positive is an error."""
    max_pos, max_neg = sample_limits(max_positives, max_negatives)
    rng = random.Random(seed)
    groups = []
    for record in records:
        positives = [p for p in record.positives if p and p.strip()]
        if not positives:
            raise DatasetValidationError(f"{record.where('positive')}: a reranker row needs at least one positive")
        if not record.anchor or not record.anchor.strip():
            raise DatasetValidationError(f"{record.where('anchor')}: the query is empty")
        negatives = [n for n in record.negatives if n and n.strip()]
        for positive in _take(positives, max_pos, rng):
            groups.append((record.anchor, positive, _take(negatives, max_neg, rng)))
    if not groups:
        raise DatasetValidationError("the reranker dataset is empty")
    return groups


def groups_to_dataset(groups: Sequence[tuple[str, str, list[str]]]) -> datasets.Dataset:
    """Columns ``anchor, positive, negative_1..negative_k`` (k = the largest group's); shorter groups are padded
    with ``""`` (not ``None``: sentence-transformers' trainer tokenises every column for its model card)."""
    import datasets

    width = max(len(negatives) for _, _, negatives in groups)
    columns: dict[str, list[str]] = {"anchor": [g[0] for g in groups], "positive": [g[1] for g in groups]}
    for i in range(width):
        columns[f"negative_{i + 1}"] = [g[2][i] if i < len(g[2]) else "" for g in groups]
    features = datasets.Features({name: datasets.Value("string") for name in columns})
    return datasets.Dataset.from_dict(columns, features=features)


def load_reranker_dataset(
    spec: str | Sequence[str],
    *,
    seed: int = 42,
    split: str = "train",
    max_positives: int | None = None,
    max_negatives: int | None = None,
) -> datasets.Dataset:
    """A swift ``--dataset`` spec (or several) as reranker training rows (see the module doc)."""
    records = read_records(spec, seed=seed, split=split)
    return groups_to_dataset(reranker_groups(records, max_positives=max_positives, max_negatives=max_negatives, seed=seed))


def reranking_samples(records: Iterable[Record], *, seed: int = 42) -> list[dict[str, object]]:
    """Samples for sentence-transformers' ``CrossEncoderRerankingEvaluator``: every candidate is re-ranked.

    ``documents`` are every candidate (no sampling: evaluation sees the whole list) in a seeded random order:
    a ``Record`` lists positives first, and the evaluator's ``base_*`` metrics score the given order.
    Queries with a single candidate are left out: there is nothing to rank (and nDCG is undefined).
    """
    rng = random.Random(seed)
    samples = []
    for record in records:
        positives = [p for p in record.positives if p and p.strip()]
        if not positives:
            continue
        negatives = [n for n in record.negatives if n and n.strip() and n not in positives]
        if len(positives) + len(negatives) < 2:
            continue
        documents = positives + negatives
        rng.shuffle(documents)
        samples.append({"query": record.anchor, "positive": positives, "documents": documents})
    if not samples:
        raise DatasetValidationError("no evaluation query has a positive document and at least two candidates")
    return samples


def load_reranking_samples(spec: str | Sequence[str], *, seed: int = 42, split: str = "train") -> list[dict[str, object]]:
    return reranking_samples(read_records(spec, seed=seed, split=split), seed=seed)
