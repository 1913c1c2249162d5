"""Reading speed of the data layer: STS-B train (5,749 rows) as records and as a validated Dataset.

Target: reading (``read_records``) well under a second on one CPU core. Run: ``python benchmarks/bench_data.py
[path/to/train.tsv]`` (default: ``../shared/data/stsb/train.tsv``, else the packaged sample).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from st_qwen3emb.data import default_sts_sample_path, load_dataset, read_records

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb" / "train.tsv"
    path = sys.argv[1] if len(sys.argv) > 1 else str(shared if shared.exists() else default_sts_sample_path())
    rows = sum(1 for _ in read_records(path))
    load_dataset(path, loss_type="cosine_similarity")  # warm the datasets import
    read_s = best_of(5, lambda: list(read_records(path)))
    load_s = best_of(5, lambda: load_dataset(path, loss_type="cosine_similarity"))
    print(f"{path}: {rows} rows; read_records {read_s * 1000:.1f} ms; load_dataset (validated Dataset) {load_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
