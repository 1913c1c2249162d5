"""Hard-negative mining over a corpus held in memory: pairs + a corpus -> rows with ``k`` mined negatives.

Built on sentence-transformers' ``mine_hard_negatives`` (``sentence_transformers/util/hard_negatives.py``): it embeds
the corpus and the queries, keeps each query's top ``range_max`` documents (faiss when installed and asked for,
else a chunked exact search), drops false-negative suspects (``absolute_margin`` / ``relative_margin`` /
``max_score``, on the reranker's scores when one is given) and picks ``k`` negatives (``top`` or ``random``).

What is added here:

- the Qwen3 protocol: queries are encoded with the model's ``query`` prompt (``Instruct: ...\\nQuery:``), documents
  with its ``document`` prompt (none for Qwen3), exactly as ``sft`` trains them;
- known positives are never negatives: every positive of a query (all its qrels positives for a BEIR folder, not
  only the one in a row) is given to the miner as that query's positive, and the miner excludes all of them;
- a reranker filter (any ``CrossEncoder``; a Qwen3-Reranker through ``load_reranker``), teacher scores for
  distillation, and a summary.

The upstream miner takes the corpus as one list of strings; ``mining.streaming`` calls this on one bounded chunk of
candidates at a time for corpora larger than that.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from st_qwen3emb.data import Record

DEFAULT_NUM_NEGATIVES = 7


@dataclass
class MiningSummary:
    """What a mining run produced: rows written, rows short of ``k`` negatives, candidates dropped by each guard."""

    rows: int = 0
    queries: int = 0
    corpus: int = 0
    num_negatives: int = DEFAULT_NUM_NEGATIVES
    short_rows: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: MiningSummary) -> None:
        """Count ``other`` (the next group of queries of the same run) into this summary."""
        self.rows += other.rows
        self.queries += other.queries
        self.short_rows += other.short_rows
        for name, n in other.removed.items():
            self.removed[name] = self.removed.get(name, 0) + n

    def lines(self) -> list[str]:
        removed = ", ".join(f"{n:,} by {name}" for name, n in self.removed.items()) or "none"
        return [
            f"rows written:               {self.rows:,} ({self.queries:,} queries, corpus of {self.corpus:,} documents)",
            f"rows with < {self.num_negatives} negatives:     {self.short_rows:,}",
            f"false negatives removed:    {removed}",
            f"time:                       {self.seconds:.1f} s",
        ]


# --- inputs ------------------------------------------------------------------------------------------------------
def query_positives(records: Iterable[Record]) -> dict[str, list[str]]:
    """Every positive of each query text, merged over all the rows that share the query (first-seen order)."""
    positives: dict[str, list[str]] = {}
    for record in records:
        known = positives.setdefault(record.anchor, [])
        known.extend(p for p in record.positives if p not in known)
    return {query: docs for query, docs in positives.items() if docs}


# --- mining ------------------------------------------------------------------------------------------------------
def mining_prompts(model: SentenceTransformer) -> tuple[str | None, str | None]:
    """The (query, document) prompts the model was trained with; for Qwen3 the query instruction and none."""
    prompts = dict(getattr(model, "prompts", {}) or {})
    return prompts.get("query") or None, prompts.get("document") or None


_SKIPPED = re.compile(r"Skipped ([\d,]+) potential negatives .* due to the (\w+)")


class _Tee(io.TextIOBase):
    """Shows the upstream miner's report and keeps a copy: it prints its skip counts instead of returning them."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def mine(
    model: SentenceTransformer,
    positives: dict[str, list[str]],
    corpus: Sequence[str] | None = None,
    *,
    num_negatives: int = DEFAULT_NUM_NEGATIVES,
    range_min: int = 0,
    range_max: int | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    max_score: float | None = None,
    sampling_strategy: Literal["top", "random"] = "top",
    reranker: CrossEncoder | None = None,
    batch_size: int = 32,
    use_faiss: bool | None = None,
    verbose: bool = True,
) -> tuple[list[dict[str, Any]], MiningSummary]:
    """Mine ``num_negatives`` negatives per (query, positive) pair.

    Returns rows ``{"query", "positive", "negatives": [...], "scores": [positive, negatives...]}`` (hardest first;
    fewer than ``num_negatives`` when the guards left too few candidates) and a summary. Scores are the reranker's
    when it rescored the candidates, else the embedder's cosine. ``use_faiss`` None means "when faiss imports".
    ``reranker`` with ``max_score`` drops candidates it scores above ``max_score`` (likely false negatives).
    """
    import time

    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    if reranker is not None and absolute_margin is None and relative_margin is None and max_score is None:
        raise ValueError(
            "a reranker only filters with a threshold: give max_score (drop candidates the reranker scores above it) "
            "or absolute_margin / relative_margin (relative to the reranker's score of the positive)"
        )
    if use_faiss is None:
        import importlib.util

        use_faiss = importlib.util.find_spec("faiss") is not None
    start = time.perf_counter()
    pairs = [(query, doc) for query, docs in positives.items() for doc in docs]
    dataset = Dataset.from_dict({"query": [q for q, _ in pairs], "positive": [d for _, d in pairs]})
    query_prompt, document_prompt = mining_prompts(model)
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee if verbose else io.StringIO()) as out:
        mined = mine_hard_negatives(
            dataset, model, anchor_column_name="query", positive_column_name="positive",
            corpus=list(corpus) if corpus is not None else None, cross_encoder=reranker, range_min=range_min,
            range_max=range_max, max_score=max_score, absolute_margin=absolute_margin, relative_margin=relative_margin,
            num_negatives=num_negatives, sampling_strategy=sampling_strategy, query_prompt=query_prompt,
            corpus_prompt=document_prompt, output_format="labeled-list", output_scores=True,
            batch_size=batch_size, use_faiss=use_faiss, verbose=True,
        )  # fmt: skip
    report = tee.copy.getvalue() if verbose else out.getvalue()
    rows = _rows(mined, positives)
    found = {(r["query"], r["positive"]) for r in rows}
    # Pairs whose every candidate was filtered out are absent from the upstream result: keep them, negative-less.
    rows += [{"query": q, "positive": d, "negatives": [], "scores": []} for q, d in pairs if (q, d) not in found]
    summary = MiningSummary(
        rows=len(rows), queries=len(positives), corpus=len(set(corpus or []) | {d for _, d in pairs}),
        num_negatives=num_negatives, short_rows=sum(len(r["negatives"]) < num_negatives for r in rows),
        removed={name: int(n.replace(",", "")) for n, name in _SKIPPED.findall(report)},
        seconds=time.perf_counter() - start,
    )  # fmt: skip
    return rows, summary


def _rows(mined: Any, positives: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for query, docs, scores in zip(mined["query"], mined["positive"], mined["scores"], strict=True):
        positive, negatives = docs[0], list(docs[1:])
        known = set(positives.get(query, ()))
        # The upstream miner already excludes every positive of the query; this guard keeps that promise even if
        # its matching ever changes (e.g. a positive reached through a duplicate corpus text).
        keep = [i for i, doc in enumerate(negatives) if doc not in known]
        rows.append(
            {
                "query": query,
                "positive": positive,
                "negatives": [negatives[i] for i in keep],
                "scores": [float(scores[0])] + [float(scores[1 + i]) for i in keep],
            }
        )
    return rows
