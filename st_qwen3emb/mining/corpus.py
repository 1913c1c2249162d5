"""Where the miner's corpus comes from: a BEIR folder or its ``corpus.jsonl``, a JSONL file, a text file, read as a
stream.

``CorpusFile`` reads its file line by line each time it is iterated, so a corpus of a million passages is never a
million-string list: the chunked miner (``mining.streaming``) holds one chunk of texts at a time and reads the file
again to fetch the few texts it needs by position. A BEIR document's text is ``title + " " + text`` (as BEIR and
mteb join them) and one with neither is skipped, as ``data.retrieval.load_corpus`` does; in any other JSONL file a
row without text is an error naming the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusFile:
    """A corpus file read as a stream of document texts, in file order, as often as it is iterated."""

    path: Path
    kind: str  # "beir" (corpus.jsonl: no-text documents skipped), "jsonl" (text required) or "text" (a line each)

    def __iter__(self) -> Iterator[str]:
        from st_qwen3emb.data.formats import json_lines
        from st_qwen3emb.data.records import DatasetValidationError
        from st_qwen3emb.data.retrieval import document_text

        with open(self.path, encoding="utf-8") as handle:
            try:
                if self.kind == "text":
                    yield from (line.strip() for line in handle if line.strip())
                    return
                for number, row, error in json_lines(handle):
                    text = document_text(row) if error is None else ""
                    if error is not None or (not text and self.kind == "jsonl"):
                        raise DatasetValidationError(f"{self.path}, line {number}: {error or 'no title or text field'}")
                    if text:
                        yield text
            except UnicodeDecodeError as err:
                raise DatasetValidationError(
                    f"{self.path}: not UTF-8 text (byte {err.start} of a read block)"
                ) from None

    def check(self) -> int:
        """Read the file through once: the number of documents, or the first bad row's error (before any model
        loads)."""
        return sum(1 for _ in self)

    def identity(self) -> dict:
        """What a saved mining state was computed from: this file, as it was (size and modification time)."""
        stat = os.stat(self.path)
        return {"path": str(self.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def corpus_file(path: str | Path) -> CorpusFile:
    """The corpus at ``path``: a BEIR folder (its ``corpus.jsonl``), a BEIR ``corpus.jsonl``, a ``.jsonl`` with a
    ``text`` (and optional ``title``) field, or a plain text file with one document per line."""
    from st_qwen3emb.data.records import DatasetValidationError
    from st_qwen3emb.data.retrieval import is_retrieval_folder

    path = Path(path)
    if is_retrieval_folder(path):
        return CorpusFile(path / "corpus.jsonl", "beir")
    if not path.is_file():
        raise DatasetValidationError(f"--corpus {path}: no such file (a BEIR folder, corpus.jsonl, .jsonl or .txt)")
    if path.name == "corpus.jsonl":
        return CorpusFile(path, "beir")
    return CorpusFile(path, "jsonl" if path.suffix.lower() in (".jsonl", ".json") else "text")


def default_corpus(spec: str | Sequence[str]) -> CorpusFile | None:
    """The BEIR folder's own corpus when the (first) dataset spec is one, else None (the pairs' positives)."""
    from st_qwen3emb.data import parse_dataset_spec
    from st_qwen3emb.data.retrieval import is_retrieval_folder

    first = spec if isinstance(spec, str) else spec[0]
    parsed = parse_dataset_spec(str(first))
    if parsed.is_local and is_retrieval_folder(parsed.name):
        return corpus_file(parsed.name)
    return None
