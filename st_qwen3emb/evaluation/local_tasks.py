"""mteb tasks defined from local files, so an evaluation needs no Hub.

- ``local_sts_task(path)``: a file or folder in the STS-B layout (see ``sts.load_sts_data``).
- ``local_retrieval_task(folder)``: BEIR layout, ``corpus.jsonl`` (``_id``, ``title``, ``text``),
  ``queries.jsonl`` (``_id``, ``text``), ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``).
  A document is ``title + " " + text`` (just ``text`` when the title is empty), as in BEIR and mteb.
- ``local_reranking_task(folder)``: the same files plus ``candidates.jsonl`` (``query_id``,
  ``candidates``: the document ids to rerank), the ``maniscope_*_rerank10`` layout.

mteb registers tasks by class; each call makes a subclass whose ``metadata`` names the files, with a
content hash as the dataset revision, so results of different data never share a name and revision.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from st_qwen3emb.data.retrieval import BeirData
from st_qwen3emb.data.retrieval import read_beir as read_beir_folder
from st_qwen3emb.data.retrieval import read_candidates as read_candidates_file

LOCAL_SUFFIX = "-local"
DEFAULT_LANG = "eng-Latn"


class LocalTaskError(ValueError):
    """Local task files that cannot be used; the message names the file, the row and the field."""


def _content_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _metadata(name: str, *, path: str, revision: str, task_type: str, main_score: str, split: str, lang: str) -> Any:
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        dataset={"path": path, "revision": revision},
        description=f"Local {task_type} task read from {path}.",
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=[split],
        eval_langs=[lang],
        main_score=main_score,
    )


def is_local_task(task: Any) -> bool:
    return bool(getattr(task, "is_local", False))


# --- STS ----------------------------------------------------------------------------------------
def local_sts_task(path: str | Path, *, split: str = "test", lang: str = DEFAULT_LANG, name: str | None = None) -> Any:
    """An mteb STS task (main score ``cosine_spearman``) over a local STS-B-layout file or folder."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    from st_qwen3emb.evaluation.sts import load_sts_data

    data = load_sts_data(str(path), split)
    source = Path(data.source)
    metadata = _metadata(
        name or data.name,
        path=data.source,
        revision=_content_hash([source]),
        task_type="STS",
        main_score="cosine_spearman",
        split=data.split,
        lang=lang,
    )
    rows = {"sentence1": data.sentences1, "sentence2": data.sentences2, "score": data.scores}

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = DatasetDict({data.split: Dataset.from_dict(rows)})
        self.data_loaded = True

    cls = type(
        "LocalSTSTask",
        (AbsTaskSTS,),
        {"metadata": metadata, "min_score": 0, "max_score": 1, "load_data": load_data, "is_local": True},
    )
    return cls()


# --- retrieval and reranking --------------------------------------------------------------------
def read_beir(folder: str | Path, split: str = "test") -> BeirData:
    """A BEIR folder for evaluation, read by the data layer's one BEIR reader (``st_qwen3emb.data.retrieval``) with
    every qrels id checked; qrels scores are graded integers (<= 0 means not relevant, as in trec_eval)."""
    from st_qwen3emb.data import DatasetValidationError

    folder = Path(folder)
    if not folder.is_dir():
        raise LocalTaskError(f"{folder}: not a folder (expected corpus.jsonl, queries.jsonl, qrels/{split}.tsv)")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise LocalTaskError(f"{folder / name}: file not found")
    try:
        data = read_beir_folder(folder, split, check_ids=True)
    except DatasetValidationError as err:
        raise LocalTaskError(str(err)) from None
    if not data.qrels:
        raise LocalTaskError(f"{data.files[-1]}: no judgements")
    return data


def read_candidates(folder: str | Path, data: BeirData) -> dict[str, list[str]]:
    """``candidates.jsonl``: for each query, the ids of the documents to rerank (all must be in the corpus)."""
    from st_qwen3emb.data import DatasetValidationError

    path = Path(folder) / "candidates.jsonl"
    if not path.is_file():
        raise LocalTaskError(f"{path}: file not found")
    try:
        return read_candidates_file(folder, data)
    except DatasetValidationError as err:
        raise LocalTaskError(str(err)) from None


def _beir_task(folder: str | Path, *, reranking: bool, split: str, lang: str, name: str | None) -> Any:
    """A retrieval task over a BEIR folder; with ``reranking``, over each query's ``candidates.jsonl`` only."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    folder = Path(folder).resolve()
    data = read_beir(folder, split)
    top_ranked = read_candidates(folder, data) if reranking else None
    metadata = _metadata(
        name or f"{folder.name}{LOCAL_SUFFIX}",
        path=str(folder),
        revision=_content_hash(data.files),
        task_type="Reranking" if reranking else "Retrieval",
        main_score="ndcg_at_10",
        split=split,
        lang=lang,
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        query_ids = [qid for qid in data.queries if top_ranked is None or qid in top_ranked]
        kept = set(query_ids)
        self.dataset = {
            "default": {
                split: {
                    "corpus": Dataset.from_dict({"id": list(data.corpus), "text": list(data.corpus.values())}),
                    "queries": Dataset.from_dict({"id": query_ids, "text": [data.queries[q] for q in query_ids]}),
                    "relevant_docs": {q: dict(d) for q, d in data.qrels.items() if q in kept},
                    "top_ranked": None if top_ranked is None else {q: list(c) for q, c in top_ranked.items()},
                }
            }
        }
        self.data_loaded = True

    class_name = "LocalRerankingTask" if reranking else "LocalRetrievalTask"
    return type(class_name, (AbsTaskRetrieval,), {"metadata": metadata, "load_data": load_data, "is_local": True})()


def local_retrieval_task(
    folder: str | Path, *, split: str = "test", lang: str = DEFAULT_LANG, name: str | None = None
) -> Any:
    """An mteb retrieval task (main score ``ndcg_at_10``, graded qrels) over a local BEIR folder."""
    return _beir_task(folder, reranking=False, split=split, lang=lang, name=name)


def local_reranking_task(
    folder: str | Path, *, split: str = "test", lang: str = DEFAULT_LANG, name: str | None = None
) -> Any:
    """An mteb reranking task (main score ``ndcg_at_10``) over a local folder with ``candidates.jsonl``."""
    return _beir_task(folder, reranking=True, split=split, lang=lang, name=name)
