"""Mining a corpus of any size: at most ``chunk_size`` corpus texts in memory, and an interrupted run resumes.

sentence-transformers' ``mine_hard_negatives`` takes the corpus as one list of strings and embeds all of it at once,
so a million-passage corpus is a million-string list plus its embeddings, and a crash loses everything. A corpus of
at most ``chunk_size`` documents still goes to it directly (``hard_negatives.mine``); a larger one is mined in two
stages:

1. ``top_candidates`` reads the corpus as a stream, ``chunk_size`` documents at a time. Each chunk is embedded with
   the model's document prompt, scored against every query (query prompt) with ``model.similarity`` and merged into
   each query's running top ``k``, where ``k = range_max + the most positives any query has``: the candidates
   upstream keeps. The positives come first in the stream, because upstream adds them to the corpus; a text seen
   before is not embedded again, because upstream de-duplicates the corpus. Only positions and scores are kept, and
   the state is saved after every chunk.
2. The queries are grouped so that a group's candidates are at most ``chunk_size`` texts. For each group, the corpus
   is read once more to fetch those texts by position, and ``mine`` runs on that small corpus with the same explicit
   ``range_max``. A query's top ``k`` over the whole corpus are all in its group's corpus, and nothing else there can
   outrank them, so upstream finds the same candidates as over the whole corpus: without a reranker the rows are those
   of the in-memory path (``tests/test_mining.py`` checks this on a corpus cut into chunks of 5). A reranker rescores
   ``range_max`` plus the group's most positives per query, which can be fewer than the whole run's.

The cost of the bound is that stage 2 embeds the candidates again: at most ``queries x k`` texts, and in practice
the union of the candidates, which is far fewer. Faiss, when installed, is used in stage 2; stage 1 is an exact
search in blocks of queries.

``write_mined`` is the one path from pairs to a mined file, used by ``st-qwen3emb mine`` and
``training_scripts/train_retrieval.py``. Its state lives in a hidden folder next to the output,
``.<output name>.mining-state/``, and is removed once the output is written. Running the same command again resumes
from the last saved chunk or group. A different model, prompt, query set or corpus file starts over.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hard_negatives import DEFAULT_NUM_NEGATIVES, MiningSummary, mine, mining_prompts
from .output import OutputFormat, format_row, write_jsonl

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

DEFAULT_CHUNK_SIZE = 100_000
QUERY_BLOCK = 1024  # queries scored against a chunk at once: bounds the score matrix to QUERY_BLOCK x chunk_size
STATE_SUFFIX = ".mining-state"
_FINGERPRINT = "fingerprint.json"


def default_range_max(num_negatives: int, range_min: int, max_positives: int, guarded: bool) -> int:
    """The candidate depth upstream derives when ``range_max`` is not given (``mine_hard_negatives``): room for ten
    times the negatives when a margin or score guard may drop some, else just enough."""
    return range_min + num_negatives * (10 if guarded else 1) + max_positives


class PositivesThenCorpus:
    """The stage-1 stream: every distinct positive, then the corpus; re-iterable, so texts can be fetched by
    position."""

    def __init__(self, positives: dict[str, list[str]], corpus: Iterable[str]) -> None:
        self.positives = list(dict.fromkeys(doc for docs in positives.values() for doc in docs))
        self.corpus = corpus

    def __iter__(self) -> Iterator[str]:
        return itertools.chain(self.positives, self.corpus)

    def identity(self) -> dict:
        corpus = self.corpus.identity() if hasattr(self.corpus, "identity") else {"texts": _sha256(self.corpus)}
        return {"positives": _sha256(self.positives), "corpus": corpus}

    def texts_at(self, positions: Iterable[int]) -> dict[int, str]:
        """The texts at ``positions``, in one pass that stops once it has them all."""
        wanted = set(positions)
        found: dict[int, str] = {}
        for position, text in enumerate(self):
            if position in wanted:
                found[position] = text
                if len(found) == len(wanted):
                    break
        return found


def _sha256(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _model_identity(model: SentenceTransformer) -> str:
    """Prompts, length and the first weights: enough to tell a saved state of another (or retrained) model."""
    digest = hashlib.sha256(repr((sorted((model.prompts or {}).items()), model.max_seq_length)).encode())
    for param in itertools.islice(model.parameters(), 2):
        digest.update(param.detach().float().flatten()[:4096].cpu().numpy().tobytes())
    return digest.hexdigest()


class MiningState:
    """A chunked run's progress in ``folder``: stage 1's running top-k after each chunk, then each group's rows.

    The folder holds a fingerprint of what the run mines; a folder with another fingerprint is replaced (it is this
    project's), a folder without one is refused (it is not)."""

    def __init__(self, folder: str | Path, fingerprint: dict, *, verbose: bool = True) -> None:
        self.folder = Path(folder)
        fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        mark = self.folder / _FINGERPRINT
        if self.folder.exists():
            if not mark.is_file():
                raise FileExistsError(f"{self.folder} exists and is not a mining state; move it away to mine here")
            if json.loads(mark.read_text()) != fingerprint:
                if verbose:
                    print(f"starting over: {self.folder} holds the state of a different mining run")
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not mark.is_file():
            _write_atomic(mark, json.dumps(fingerprint, sort_keys=True).encode())

    def has_progress(self) -> bool:
        return (self.folder / "stage1.npz").is_file()

    def load_stage1(self) -> dict[str, Any] | None:
        import numpy as np

        path = self.folder / "stage1.npz"
        if not path.is_file():
            return None
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}

    def save_stage1(self, **arrays: Any) -> None:
        import io

        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _write_atomic(self.folder / "stage1.npz", buffer.getvalue())

    def load_group(self, number: int) -> tuple[list[dict], MiningSummary] | None:
        path = self.folder / f"group-{number:05d}.json"
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        return saved["rows"], MiningSummary(**saved["summary"])

    def save_group(self, number: int, rows: list[dict], summary: MiningSummary) -> None:
        text = json.dumps({"rows": rows, "summary": asdict(summary)}, ensure_ascii=False)
        _write_atomic(self.folder / f"group-{number:05d}.json", text.encode("utf-8"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def top_candidates(
    model: SentenceTransformer,
    queries: list[str],
    stream: Iterable[str],
    k: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = 32,
    state: MiningState | None = None,
    verbose: bool = True,
) -> tuple[np.ndarray, int]:
    """Stage 1: each query's ``k`` best stream positions (``-1`` pads when the stream is shorter), best first, and
    the number of distinct texts; ``chunk_size`` texts in memory at a time, resumable through ``state``."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    query_prompt, document_prompt = mining_prompts(model)
    query_embeddings = model.encode_query(
        queries, prompt=query_prompt, batch_size=batch_size, normalize_embeddings=True,
        convert_to_tensor=True, show_progress_bar=verbose,
    )  # fmt: skip
    saved = state.load_stage1() if state else None
    if saved is not None:
        scores, positions = torch.from_numpy(saved["scores"]), torch.from_numpy(saved["positions"])
        consumed, seen, finished = int(saved["consumed"]), set(saved["seen"].tolist()), bool(saved["finished"])
        if verbose and not finished:
            print(f"resuming from the saved state: {consumed:,} documents already searched")
    else:
        scores = torch.full((len(queries), k), -float("inf"))
        positions = torch.full((len(queries), k), -1, dtype=torch.long)
        consumed, seen, finished = 0, set(), False
    bar = tqdm(desc="Searching the corpus", unit="doc", initial=consumed, disable=not verbose or finished)
    documents = itertools.islice(enumerate(stream), consumed, None)
    while not finished:
        chunk = list(itertools.islice(documents, chunk_size))
        finished = len(chunk) < chunk_size
        fresh = []
        for position, text in chunk:
            if (digest := _text_hash(text)) not in seen:
                seen.add(digest)
                fresh.append((position, text))
        if fresh:
            embeddings = model.encode_document(
                [text for _, text in fresh], prompt=document_prompt, batch_size=batch_size,
                normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False,
            )  # fmt: skip
            fresh_positions = torch.tensor([position for position, _ in fresh])
            for start in range(0, len(queries), QUERY_BLOCK):
                block = slice(start, start + QUERY_BLOCK)
                merged = torch.cat([scores[block], model.similarity(query_embeddings[block], embeddings).cpu()], 1)
                merged_positions = torch.cat([positions[block], fresh_positions.expand(merged.size(0), -1)], 1)
                scores[block], best = merged.topk(k, dim=1)
                positions[block] = merged_positions.gather(1, best)
        consumed += len(chunk)
        bar.update(len(chunk))
        if state is not None:
            state.save_stage1(
                scores=scores.numpy(), positions=positions.numpy(), consumed=np.int64(consumed),
                seen=np.fromiter(seen, dtype=np.uint64, count=len(seen)), finished=np.bool_(finished),
            )  # fmt: skip
    bar.close()
    return positions.numpy(), len(seen)


def candidate_groups(positions: np.ndarray, limit: int) -> list[list[int]]:
    """Consecutive queries grouped so that each group's candidate positions number at most ``limit`` (a query
    whose own candidates exceed it is a group alone)."""
    groups: list[list[int]] = []
    current: list[int] = []
    union: set[int] = set()
    for query, row in enumerate(positions):
        candidates = {int(p) for p in row if p >= 0}
        if current and len(union | candidates) > limit:
            groups.append(current)
            current, union = [], set()
        current.append(query)
        union |= candidates
    if current:
        groups.append(current)
    return groups


def mine_corpus(
    model: SentenceTransformer,
    positives: dict[str, list[str]],
    corpus: Iterable[str] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    state: MiningState | None = None,
    verbose: bool = True,
    **options: Any,
) -> tuple[list[dict[str, Any]], MiningSummary]:
    """``mine`` for a corpus of any size (``options`` are ``mine``'s): in memory when the corpus has at most
    ``chunk_size`` documents (or is None: the pairs' positives), else in the two stages above."""
    if corpus is None:
        return mine(model, positives, None, verbose=verbose, **options)
    head = list(itertools.islice(iter(corpus), chunk_size + 1))
    if len(head) <= chunk_size:
        return mine(model, positives, head, verbose=verbose, **options)
    del head
    start = time.perf_counter()
    num_negatives = options.get("num_negatives", DEFAULT_NUM_NEGATIVES)
    max_positives = max(len(docs) for docs in positives.values())
    if options.get("range_max") is None:
        guarded = any(options.get(name) is not None for name in ("absolute_margin", "relative_margin", "max_score"))
        options["range_max"] = default_range_max(num_negatives, options.get("range_min", 0), max_positives, guarded)
    k = options["range_max"] + max_positives
    queries = list(positives)
    stream = PositivesThenCorpus(positives, corpus)
    candidates, distinct = top_candidates(
        model, queries, stream, k, chunk_size=chunk_size, batch_size=options.get("batch_size", 32), state=state,
        verbose=verbose,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    summary = MiningSummary(num_negatives=num_negatives, corpus=distinct)
    groups = candidate_groups(candidates, chunk_size)
    from tqdm.auto import tqdm

    for number, members in enumerate(tqdm(groups, desc="Mining query groups", disable=not verbose)):
        done = state.load_group(number) if state else None
        if done is None:
            texts = stream.texts_at(int(p) for p in candidates[members].ravel() if p >= 0)
            group = {queries[i]: positives[queries[i]] for i in members}
            done = mine(model, group, list(texts.values()), verbose=False, **options)
            if state is not None:
                state.save_group(number, *done)
        rows += done[0]
        summary.add(done[1])
    summary.seconds = time.perf_counter() - start
    return rows, summary


def write_mined(
    model: SentenceTransformer,
    positives: dict[str, list[str]],
    corpus: Iterable[str] | None,
    output: str | Path,
    *,
    output_format: OutputFormat = "swift4",
    with_scores: bool = False,
    overwrite: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    verbose: bool = True,
    **options: Any,
) -> tuple[Path, MiningSummary]:
    """Mine and write ``output`` (atomically); a chunked run saves its progress next to ``output`` and the same
    call resumes it after an interruption."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    state = None
    if corpus is not None and hasattr(corpus, "identity"):  # a file: its progress can be saved and found again
        fingerprint = {
            "model": _model_identity(model), "queries": _sha256(positives),
            "positives": _sha256(doc for docs in positives.values() for doc in docs), "corpus": corpus.identity(),
            "chunk_size": chunk_size,
            "options": {name: value if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
                        for name, value in sorted(options.items()) if name not in ("batch_size", "use_faiss")},
        }  # fmt: skip
        state = MiningState(state_folder(output), fingerprint, verbose=verbose)
    try:
        rows, summary = mine_corpus(model, positives, corpus, chunk_size=chunk_size, state=state, verbose=verbose,
                                    **options)  # fmt: skip
    except KeyboardInterrupt:
        if state is not None and state.has_progress():
            print(f"\ninterrupted: progress is saved in {state.folder}; the same command resumes from there")
        elif state is not None:
            state.remove()
        raise
    path = write_jsonl((format_row(r, output_format, with_scores=with_scores) for r in rows), output,
                       overwrite=overwrite)  # fmt: skip
    if state is not None:
        state.remove()
    return path, summary


def state_folder(output: str | Path) -> Path:
    """Where a chunked run of ``output`` keeps its progress: a hidden folder beside it."""
    output = Path(output)
    return output.with_name(f".{output.name}{STATE_SUFFIX}")
