"""``st-qwen3emb sft``: swift's flags -> ``RunConfig`` -> ``train``; bad input exits 2 with one clear message."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from st_qwen3emb.config import ConfigError, help_text, parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        return 0
    try:
        config = parse_args(argv)
    except ConfigError as err:
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    from st_qwen3emb.distributed import maybe_relaunch  # NPROC_PER_NODE=N: the same command under torchrun

    relaunched = maybe_relaunch(argv)  # flags are checked once above, before any worker starts
    return run(config) if relaunched is None else relaunched


def run(config) -> int:
    """Train ``config``, turning the expected failures into messages and exit codes."""
    from st_qwen3emb.config import ConfigError
    from st_qwen3emb.data import DatasetValidationError
    from st_qwen3emb.model import ModelLoadError

    try:
        from st_qwen3emb.training import train

        run_dir = train(config)
    except (ConfigError, DatasetValidationError, ModelLoadError) as err:
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from st_qwen3emb.training.run import TrainingInterrupted
        from st_qwen3emb.training.trainer import NonFiniteLossError

        if isinstance(err, TrainingInterrupted):
            print(f"st-qwen3emb sft: {err}", file=sys.stderr)
            return 128 + err.signum
        if isinstance(err, NonFiniteLossError):
            print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
            return 1
        raise
    from st_qwen3emb import distributed
    from st_qwen3emb.config import RERANKER_TASK_TYPES

    if not distributed.is_main_process():
        return 0  # under NPROC_PER_NODE every process returns here; rank 0 alone reports the run
    final = run_dir / "final"
    print(f"\nRun folder: {run_dir}")
    if final.is_dir():
        loader = "CrossEncoder" if config.task_type in RERANKER_TASK_TYPES else "SentenceTransformer"
        print(f"Model:      {final}  (loads with {loader}({str(final)!r}))")
        print("Next:")
        print(f"  st-qwen3emb eval --model {final}")
        if config.train_type == "lora":
            print(f"  st-qwen3emb export --adapters {final} --merge_lora true --output_dir {final}-merged")
        print(f"  st-qwen3emb push {final} YOUR_NAME/MODEL_NAME")
    return 0
