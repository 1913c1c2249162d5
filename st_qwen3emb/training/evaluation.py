"""Evaluation during training: swift's metrics, computed with sentence-transformers' evaluators where they exist.

- pair losses (labels): Pearson/Spearman of cosine, Euclidean, Manhattan and dot similarity against the label
  (``eval_spearman_cosine``, ...) — sentence-transformers' ``EmbeddingSimilarityEvaluator`` with an empty name, so
  the trainer's ``eval_`` prefix gives exactly swift's keys;
- infonce: ``eval_mean_pos``, ``eval_mean_neg``, ``eval_margin`` — sentence-transformers has no such evaluator,
  so ``InfoNCEEvaluator`` below computes them (the math is the pure ``infonce_metrics``);
- extra STS sets (``--eval_sts``) and BEIR folders (``--eval_retrieval``): sentence-transformers'
  ``EmbeddingSimilarityEvaluator`` (Spearman) and ``InformationRetrievalEvaluator`` (nDCG@10).

Prompts are prepended to the texts exactly as the trainer's data collator does during training, so evaluation
sees what training saw (``SentenceTransformer.encode(prompt=...)`` concatenates the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

SIMILARITY_FNS = ["cosine", "euclidean", "manhattan", "dot"]


def _prefixed(texts: Sequence[str], prompt: str | None) -> list[str]:
    return [prompt + t for t in texts] if prompt else list(texts)


def negative_columns(column_names: Sequence[str]) -> list[str]:
    return [c for c in column_names if c.startswith("negative")]


def infonce_metrics(anchors: torch.Tensor, documents: torch.Tensor, positive_index: torch.Tensor) -> dict[str, float]:
    """swift's infonce eval metrics on L2-normalised embeddings.

    Args:
        anchors: ``(n, d)`` anchor embeddings.
        documents: ``(m, d)`` every document of the eval set (positives and hard negatives).
        positive_index: ``(n,)`` row of each anchor's own positive in ``documents``.

    Returns ``mean_pos`` (mean cosine to the own positive), ``mean_neg`` (mean cosine to every other document)
    and ``margin`` (mean of positive minus the best other document).
    """
    import torch

    sims = anchors @ documents.T
    rows = torch.arange(sims.shape[0])
    pos = sims[rows, positive_index]
    others = sims.clone()
    others[rows, positive_index] = float("nan")
    if documents.shape[0] < 2:
        return {"mean_pos": pos.mean().item(), "mean_neg": float("nan"), "margin": float("nan")}
    mean_neg = torch.nanmean(others, dim=1)
    best_neg = others.nan_to_num(float("-inf")).max(dim=1).values
    return {
        "mean_pos": pos.mean().item(),
        "mean_neg": mean_neg.mean().item(),
        "margin": (pos - best_neg).mean().item(),
    }


def _make_infonce_evaluator_class():
    # Defined on first use so that importing this module does not import sentence-transformers.
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class _InfoNCEEvaluator(SentenceEvaluator):
        """``eval_mean_pos``, ``eval_mean_neg``, ``eval_margin`` over the whole eval set (swift's infonce metrics)."""

        def __init__(self, anchors, positives, negatives, *, anchor_prompt=None, document_prompt=None, batch_size=32):
            super().__init__()
            self.anchors = _prefixed(anchors, anchor_prompt)
            # documents: the unique positives and negatives; each anchor points at its own positive's row
            docs: dict[str, int] = {}
            self.positive_index = [docs.setdefault(p, len(docs)) for p in _prefixed(positives, document_prompt)]
            for row in negatives:
                for n in _prefixed(row, document_prompt):
                    docs.setdefault(n, len(docs))
            self.documents = list(docs)
            self.batch_size = batch_size
            self.primary_metric = "margin"
            self.greater_is_better = True

        def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
            import torch

            kwargs = {"batch_size": self.batch_size, "convert_to_tensor": True, "normalize_embeddings": True}
            a = model.encode(self.anchors, **kwargs).float().cpu()
            d = model.encode(self.documents, **kwargs).float().cpu()
            metrics = infonce_metrics(a, d, torch.tensor(self.positive_index))
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
            return metrics

    return _InfoNCEEvaluator


def build_loss_evaluator(
    eval_dataset: Dataset, *, paired: bool, anchor_prompt: str | None, document_prompt: str | None, batch_size: int
):
    """swift's eval metrics for the loss family: paired (labelled pairs) or infonce-style (positives, negatives)."""
    if paired:
        return _similarity_evaluator(
            eval_dataset, anchor_prompt, document_prompt, name="", fn_names=SIMILARITY_FNS, batch_size=batch_size
        )
    neg_cols = negative_columns(eval_dataset.column_names)
    negatives = [[row[c] for c in neg_cols if row[c]] for row in eval_dataset] if neg_cols else [[]] * len(eval_dataset)
    cls = _make_infonce_evaluator_class()
    return cls(
        eval_dataset["anchor"],
        eval_dataset["positive"],
        negatives,
        anchor_prompt=anchor_prompt,
        document_prompt=document_prompt,
        batch_size=batch_size,
    )


def build_sts_evaluator(dataset: Dataset, *, name: str, prompt: str | None, batch_size: int):
    """Spearman on an STS set (labels already 0..1 from the data package)."""
    return _similarity_evaluator(dataset, prompt, prompt, name=name, fn_names=["cosine"], batch_size=batch_size)


def _similarity_evaluator(
    dataset: Dataset, anchor_prompt: str | None, positive_prompt: str | None, *, name: str, fn_names: list[str],
    batch_size: int,
):
    """``EmbeddingSimilarityEvaluator`` on the anchor/positive/label columns, cosine as the main similarity."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(
        _prefixed(dataset["anchor"], anchor_prompt),
        _prefixed(dataset["positive"], positive_prompt),
        [float(x) for x in dataset["label"]],
        batch_size=batch_size,
        main_similarity="cosine",
        similarity_fn_names=fn_names,
        name=name,
        write_csv=False,
    )


def retrieval_eval_sets(folder: str | Path, split: str = "test") -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(queries, corpus, relevant docs) of a BEIR folder for ``InformationRetrievalEvaluator``.

    Reuses the data package's reader: the queries and their relevant documents come from its records, the
    corpus is the whole ``corpus.jsonl`` (so nDCG ranks against every document, as BEIR does). Documents are
    keyed by their text, which is what the records carry.
    """
    from st_qwen3emb.data.retrieval import load_corpus, retrieval_records

    records = retrieval_records(folder, split)
    corpus = {text: text for text in load_corpus(folder).values()}
    queries = {str(i): rec.anchor for i, rec in enumerate(records)}
    relevant = {str(i): set(rec.positives) for i, rec in enumerate(records)}
    return queries, corpus, relevant


def build_retrieval_evaluator(
    folder: str | Path, *, name: str, query_prompt: str | None, document_prompt: str | None, batch_size: int
):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    queries, corpus, qrels = retrieval_eval_sets(folder)
    return InformationRetrievalEvaluator(
        queries,
        corpus,
        qrels,
        name=name,
        batch_size=batch_size,
        query_prompt=query_prompt or None,
        corpus_prompt=document_prompt or None,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10],
        map_at_k=[100],
        show_progress_bar=False,
        write_csv=False,
    )
