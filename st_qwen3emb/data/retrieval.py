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
    """A BEIR document as embedded: ``title + " " + text`` (either may be absent)."""
    return " ".join(part.strip() for part in (doc.get("title") or "", doc.get("text") or "") if part.strip())


def load_corpus(folder: str | Path) -> dict[str, str]:
    """``corpus.jsonl`` of a BEIR folder as ``{doc id: document_text}`` (documents with no text left out)."""
    rows = _read_jsonl_by_id(Path(folder) / "corpus.jsonl")
    return {doc_id: text for doc_id, row in rows.items() if (text := document_text(row))}


def retrieval_records(folder: str | Path, split: str) -> list[Record]:
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetValidationError(
            f"{qrels_path}: no such file; this folder has qrels for {available or 'no split'} "
            f"(choose one as '{folder}:<split>' or with split=)"
        )
    corpus = load_corpus(folder)
    queries = _read_jsonl_by_id(folder / "queries.jsonl")
    judged: dict[str, list[tuple[float, str]]] = {}
    reader = csv.reader(io.StringIO(read_text(qrels_path), newline=""), delimiter="\t")
    next(reader, None)  # header: query-id, corpus-id, score
    for values in reader:
        if not values:
            continue
        if len(values) < 3:
            raise DatasetValidationError(f"{location(str(qrels_path), reader.line_num, None, 'line')}: expected query-id, corpus-id, score")
        try:
            score = float(values[2])
        except ValueError:
            raise DatasetValidationError(f"{location(str(qrels_path), reader.line_num, 'score', 'line')}: not a number") from None
        judged.setdefault(values[0], []).append((score, values[1]))
    candidates: dict[str, list[str]] = {}
    if (folder / "candidates.jsonl").is_file():
        for qid, row in _read_jsonl_by_id(folder / "candidates.jsonl").items():
            candidates[qid] = [str(c) for c in row.get("candidates", [])]

    records = []
    for qid, query in queries.items():
        pairs = judged.get(qid, [])
        relevant = [d for s, d in sorted(pairs, key=lambda p: -p[0]) if s > 0]
        if not relevant:
            continue
        relevant_set = set(relevant)
        negative_ids = [d for s, d in pairs if s <= 0] + [c for c in candidates.get(qid, []) if c not in relevant_set]
        positives = [t for d in relevant if (t := corpus.get(d))]
        negatives = list(dict.fromkeys(t for d in negative_ids if (t := corpus.get(d)) and t not in positives))
        if not positives or not str(query.get("text", "")).strip():
            continue
        records.append(
            Record(
                str(query["text"]), positives, negatives, None, str(folder), query["_line"], "query line",
                {"anchor": "queries.jsonl text", "positive": f"qrels/{split}.tsv", "negative": "candidates.jsonl"},
            )
        )
    return records
