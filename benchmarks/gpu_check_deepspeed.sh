#!/usr/bin/env bash
# DeepSpeed ZeRO-2 / ZeRO-3 check on a GPU machine (see benchmarks/gpu_check_deepspeed.py for what is checked).
# Usage, from the repository root:   NPROC=1 STEPS=5 bash benchmarks/gpu_check_deepspeed.sh
# The JSON summary and the training logs go to $OUT (the device tool's output folder) or ./gpu_check_out.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -c "import st_qwen3emb" 2>/dev/null || pip install --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# A machine without internet gets deepspeed from a wheelhouse carried along, built where the index is reachable:
#   pip wheel --no-deps --no-build-isolation -w wheelhouse deepspeed hjson py-cpuinfo einops msgpack ninja nvidia-ml-py
if ! python -c "import deepspeed" 2>/dev/null && [ -d "${WHEELHOUSE:-wheelhouse}" ]; then
    pip install --no-deps --no-index --find-links "${WHEELHOUSE:-wheelhouse}" \
        deepspeed hjson py-cpuinfo einops msgpack ninja nvidia-ml-py
fi
python -c "import deepspeed, torch; print('deepspeed', deepspeed.__version__, 'torch', torch.__version__)"
status=0
python benchmarks/gpu_check_deepspeed.py --nproc "${NPROC:-1}" --steps "${STEPS:-5}" --timeout "${RUN_TIMEOUT:-900}" \
    --work "$out/work" --out "$out/gpu_check_deepspeed.json" || status=$?
# keep the logs and the summary, not the models (several GB)
find "$out/work" -name '*.safetensors' -delete 2>/dev/null || true
find "$out/work" \( -name '*.pt' -o -name '*.pth' -o -name 'global_step*' \) -prune -exec rm -rf {} + 2>/dev/null || true
exit "$status"
