#!/usr/bin/env bash
# GPU throughput of a Qwen3-Embedding-0.6B-shaped random model (see benchmarks/gpu_perf.py): training tokens/s
# (sft, bf16, cosine_similarity and infonce; sdpa, and flash-attention / Liger when installed) and encoding texts/s
# (bf16, batch 64 and 128). About 4-5 minutes on one H200; nothing is downloaded.
# Usage, from the repository root:   bash benchmarks/gpu_perf.sh [extra gpu_perf.py flags]
# The JSON and the worker logs go to $OUT (the device tool's output folder) or ./gpu_perf_out.
# With the real tokenizer: carry the skeleton folder and set ST_QWEN3EMB_SKELETON to it (else the fallback one).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_perf_out}"
status=0  # gpu_perf.py sets the offline environment and imports the package from this checkout
python benchmarks/gpu_perf.py --workdir "$out/work" --out "$out/gpu_perf.json" "$@" || status=$?
# keep the JSON, the data and the logs (worker logs, each run's logging.jsonl), not the models (GBs)
rm -rf "$out/work/model_bare" "$out/work/model_st"
find "$out/work" -type d \( -name final -o -name 'checkpoint-*' \) -prune -exec rm -rf {} + 2>/dev/null || true
exit "$status"
