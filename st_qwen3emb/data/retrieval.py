"""BEIR-style retrieval folders as training records: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Each query becomes one record: its relevant documents (qrels score > 0, the BEIR convention) as positives, most
relevant first, and as negatives the documents judged not relevant (score <= 0) followed by the query's
candidates from ``candidates.jsonl`` (``{"query_id", "candidates": [doc ids]}``, when the folder has one) that
are not relevant. Queries without a relevant document are skipped. Document text is ``title + " " + text``, as
BEIR and mteb join them. The qrels split is the spec's subset (``folder:test``) or the ``split`` argument.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .formats import json_lines, read_text
from .records import DatasetValidationError, Record, location

# The files that make a folder a BEIR retrieval folder (its qrels split files aside).
RETRIEVAL_FILES = ("corpus.jsonl", "queries.jsonl")


def is_retrieval_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in RETRIEVAL_FILES)


def _read_jsonl_by_id(path: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for number, row, error in json_lines(read_text(path).splitlines()):
        if error is not None:
            raise DatasetValidationError(f"{location(str(path), number, None, 'line')}: {error}")
        key = "_id" if "_id" in row else "query_id"
        if key not in row:
            raise DatasetValidationError(f"{location(str(path), number, '_id', 'line')}: missing")
        rows[str(row[key])] = {**row, "_line": number}
    return rows


def document_text(doc: dict) -> str:
    """A BEIR document as embedded: ``title + " " + text`` (either may be absent; a number counts as its digits,
    anything else that is not a string as absent)."""
    parts = (doc.get("title"), doc.get("text"))
    texts = (str(part).strip() for part in parts if isinstance(part, (str, int, float)) and not isinstance(part, bool))
    return " ".join(text for text in texts if text)


def load_corpus(folder: str | Path) -> dict[str, str]:
    """``corpus.jsonl`` of a BEIR folder as ``{doc id: document_text}`` (documents with no text left out)."""
    rows = _read_jsonl_by_id(Path(folder) / "corpus.jsonl")
    return {doc_id: text for doc_id, row in rows.items() if (text := document_text(row))}


@dataclass
class BeirData:
    """A BEIR folder read once: the one reader behind training records, mining and the local mteb tasks."""

    corpus: dict[str, str]  # every document id -> ``document_text`` ("" for a document with no text)
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {document id: graded score}; <= 0 is "judged not relevant"
    query_lines: dict[str, int]  # query id -> its line in queries.jsonl (for error messages)
    files: list[Path]


def qrels_path(folder: str | Path, split: str) -> Path:
    """``qrels/<split>.tsv``; an error naming the splits the folder has."""
    path = Path(folder) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(folder) / "qrels").glob("*.tsv"))
        raise DatasetValidationError(
            f"{path}: no such file; this folder has qrels for {available or 'no split'} "
            f"(choose one as '{folder}:<split>' or with split=)"
        )
    return path


def read_beir(folder: str | Path, split: str, *, check_ids: bool = False) -> BeirData:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (header, then query-id, corpus-id, score).

    ``check_ids``: a qrels line naming a query or document that the folder lacks is an error (evaluation needs every
    judgement to count); otherwise such lines are kept and simply match nothing. Errors name file, line and field.
    """
    folder = Path(folder)
    path = qrels_path(folder, split)
    corpus_rows = _read_jsonl_by_id(folder / "corpus.jsonl")
    query_rows = _read_jsonl_by_id(folder / "queries.jsonl")
    corpus = {doc_id: document_text(row) for doc_id, row in corpus_rows.items()}
    queries = {qid: str(row.get("text") or "") for qid, row in query_rows.items()}
    qrels: dict[str, dict[str, int]] = {}
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    next(reader, None)  # header: query-id, corpus-id, score
    for values in reader:
        if not values:
            continue
        if len(values) < 3:
            raise DatasetValidationError(f"{location(str(path), reader.line_num, None, 'line')}: expected query-id, corpus-id, score")
        query_id, doc_id = values[0], values[1]
        try:
            score = int(float(values[2]))  # graded, as trec_eval and mteb read qrels
        except ValueError:
            raise DatasetValidationError(f"{location(str(path), reader.line_num, 'score', 'line')}: not a number") from None
        if check_ids and query_id not in queries:
            raise DatasetValidationError(f"{location(str(path), reader.line_num, 'query-id', 'line')}: "
                                         f"{query_id!r} is not in queries.jsonl")
        if check_ids and doc_id not in corpus:
            raise DatasetValidationError(f"{location(str(path), reader.line_num, 'corpus-id', 'line')}: "
                                         f"{doc_id!r} is not in corpus.jsonl")
        qrels.setdefault(query_id, {})[doc_id] = score
    lines = {qid: row["_line"] for qid, row in query_rows.items()}
    return BeirData(corpus, queries, qrels, lines, [folder / "corpus.jsonl", folder / "queries.jsonl", path])


def read_candidates(folder: str | Path, data: BeirData | None = None) -> dict[str, list[str]]:
    """``candidates.jsonl`` (``{"query_id", "candidates": [doc ids]}``): each query's documents to rerank. With
    ``data``, every id must be one of its queries and documents (evaluation), and the file joins ``data.files``."""
    path = Path(folder) / "candidates.jsonl"
    found: dict[str, list[str]] = {}
    for qid, row in _read_jsonl_by_id(path).items():
        ids = [str(c) for c in row.get("candidates") or []]
        if data is not None:
            if qid not in data.queries:
                raise DatasetValidationError(f"{location(str(path), row['_line'], 'query_id', 'line')}: "
                                             f"{qid!r} is not in queries.jsonl")
            unknown = [c for c in ids if c not in data.corpus]
            if unknown:
                raise DatasetValidationError(f"{location(str(path), row['_line'], 'candidates', 'line')}: "
                                             f"ids not in corpus.jsonl: {unknown[:5]}")
        found[qid] = ids
    if data is not None:
        data.files.append(path)
    return found


def retrieval_records(folder: str | Path, split: str) -> list[Record]:
    folder = Path(folder)
    data = read_beir(folder, split)
    corpus = {doc_id: text for doc_id, text in data.corpus.items() if text}
    judged = {qid: [(score, doc_id) for doc_id, score in docs.items()] for qid, docs in data.qrels.items()}
    candidates = read_candidates(folder) if (folder / "candidates.jsonl").is_file() else {}

    records = []
    for qid, query_text in data.queries.items():
        pairs = judged.get(qid, [])
        relevant = [d for s, d in sorted(pairs, key=lambda p: -p[0]) if s > 0]
        if not relevant:
            continue
        relevant_set = set(relevant)
        negative_ids = [d for s, d in pairs if s <= 0] + [c for c in candidates.get(qid, []) if c not in relevant_set]
        positives = [t for d in relevant if (t := corpus.get(d))]
        negatives = list(dict.fromkeys(t for d in negative_ids if (t := corpus.get(d)) and t not in positives))
        if not positives or not query_text.strip():
            continue
        records.append(
            Record(
                query_text, positives, negatives, None, str(folder), data.query_lines[qid], "query line",
                {"anchor": "queries.jsonl text", "positive": f"qrels/{split}.tsv", "negative": "candidates.jsonl"},
            )
        )
    return records
