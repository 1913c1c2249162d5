"""``st-qwen3emb sft``: swift's flags -> ``RunConfig`` -> ``train``; bad input exits 2 with one clear message."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from st_qwen3emb.config import ConfigError, help_text, parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        return 0
    from st_qwen3emb.training.resume import restore_flags

    try:
        argv, resuming = restore_flags(argv)  # --resume_from_checkpoint alone brings back the run's flags
        config = parse_args(argv)
    except ConfigError as err:
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    if resuming and "LOCAL_RANK" not in os.environ:  # once, not again in each launched worker
        print(f"st-qwen3emb sft: {resuming}", flush=True)
    from st_qwen3emb.distributed import maybe_relaunch  # NPROC_PER_NODE=N: the same command under torchrun

    try:
        relaunched = maybe_relaunch(argv, check=lambda: _check_quietly(config))
    except _bad_input_errors() as err:  # reported as a single process would, before any worker starts
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    return run(config) if relaunched is None else relaunched


def _bad_input_errors() -> tuple[type[Exception], ...]:
    from st_qwen3emb.config import ConfigError
    from st_qwen3emb.data import DatasetValidationError
    from st_qwen3emb.model import ModelLoadError

    return ConfigError, DatasetValidationError, ModelLoadError


def _check_quietly(config) -> None:
    """The launcher's check of the input; its warnings are left to the workers' rank 0, which repeats the checks."""
    import logging

    from st_qwen3emb.config import task_entry_point

    logging.disable(logging.WARNING)
    try:
        task_entry_point(config.task_type, "check")(config)
    finally:
        logging.disable(logging.NOTSET)


def run(config) -> int:
    """Train ``config``, turning the expected failures into messages and exit codes."""
    try:
        from st_qwen3emb.training import train

        run_dir = train(config)
    except _bad_input_errors() as err:
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from st_qwen3emb.training.run import TrainingInterrupted
        from st_qwen3emb.training.saving import DiskFullError
        from st_qwen3emb.training.trainer import NonFiniteLossError

        if isinstance(err, TrainingInterrupted):
            print(f"st-qwen3emb sft: {err}", file=sys.stderr)
            return 128 + err.signum
        if isinstance(err, (NonFiniteLossError, DiskFullError)):
            print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
            return 1
        raise
    from st_qwen3emb import distributed

    if not distributed.is_main_process():
        return 0  # under NPROC_PER_NODE every process returns here; rank 0 alone reports the run
    print("\n".join(["", *closing_summary(run_dir, config)]))
    return 0


def closing_summary(run_dir, config) -> list[str]:
    """The lines printed when a run ends: where it is, the eval score before and after, the next commands."""
    from st_qwen3emb import commands
    from st_qwen3emb.config import RERANKER_TASK_TYPES
    from st_qwen3emb.runs import RunRecordError, read_run_args
    from st_qwen3emb.training.history import closing_scores

    final = run_dir / "final"
    lines = [f"Run folder: {run_dir}"]
    scores = closing_scores(run_dir)
    if scores:
        lines.append(scores)
    if not final.is_dir():
        return lines
    loader = "CrossEncoder" if config.task_type in RERANKER_TASK_TYPES else "SentenceTransformer"
    lines.append(f"Model:      {final}  (loads with {loader}({str(final)!r}))")
    try:
        args = read_run_args(run_dir) or config.to_args_json()
    except (OSError, RunRecordError):
        args = config.to_args_json()
    return lines + ["Next:", *commands.format_steps(commands.after_training(args, final))]
