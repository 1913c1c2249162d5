"""The run machinery both trainers share: the run folder, args.json, training arguments, LoRA, resume, the loop.

``training.sft`` (embeddings) and ``reranker.train`` (rerankers) each check their flags (``check_flags``), load their
own model, data, loss and evaluators, then hand them to ``start_run`` (the ``v<N>-<timestamp>`` folder and its
args.json) and ``run_trainer`` (callbacks, the training loop, ``best-checkpoint``, the atomic ``final/``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from st_qwen3emb import __version__, distributed
from st_qwen3emb.config import ConfigError, RunConfig, resolved_learning_rate, validate
from st_qwen3emb.losses import loss_environment
from st_qwen3emb.redaction import redact_mapping
from st_qwen3emb.runs import (
    ARGS_FILE,
    BEST_LINK,
    FINAL_DIR,
    RunRecord,
    RunRecordError,
    check_output_dir,
    find_resume_checkpoint,
    new_run_dir,
    point_link,
    read_run_args,
    remove_stale_run_scratch,
    write_json_atomic,
)
from st_qwen3emb.training.history import EVAL_METRIC_KEY

logger = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM stopped the run after saving ``checkpoint``; the message holds the complete command that
    continues it (rebuilt from the run's args.json), or that starts it again when no checkpoint exists."""

    def __init__(self, run_dir: Path, checkpoint: Path | None, signum: int):
        from st_qwen3emb import commands

        self.run_dir, self.checkpoint, self.signum = run_dir, checkpoint, signum
        try:
            args = read_run_args(run_dir)
        except (OSError, RunRecordError):
            args = None
        if args is None:
            args = {"output_dir": str(run_dir.parent)}  # resuming restores the flags from the checkpoint's args.json
        if checkpoint:
            self.command = commands.sft_command(args, resume_from=checkpoint)
            text = f"checkpoint saved at {checkpoint}. Continue with:\n  {self.command}"
        else:
            self.command = commands.sft_command(args)
            text = f"no checkpoint could be saved. Start again with:\n  {self.command}"
        super().__init__(f"training interrupted; {text}")


def build_training_args(
    config: RunConfig, run_dir: Path, *, prompts: dict[str, str], eval_enabled: bool, best_metric: str | None
) -> Any:
    """``SentenceTransformerTrainingArguments`` for the run: swift's flags, then the passed-through ones on top."""
    from sentence_transformers import SentenceTransformerTrainingArguments


    eval_strategy = config.eval_strategy or ("steps" if eval_enabled else "no")
    kwargs: dict[str, Any] = {
        "output_dir": str(run_dir),
        "num_train_epochs": config.num_train_epochs,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "per_device_eval_batch_size": config.per_device_eval_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": resolved_learning_rate(config),
        "warmup_steps": config.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "eval_strategy": eval_strategy,
        "dataloader_drop_last": config.dataloader_drop_last,
        "prompts": prompts or None,
        "report_to": "none",
        "disable_tqdm": False,
        "logging_first_step": False,
        "save_safetensors": True,
    }
    if eval_strategy != "no":
        kwargs["eval_steps"] = config.eval_steps or config.save_steps
        if best_metric:
            kwargs["metric_for_best_model"] = best_metric
            kwargs["greater_is_better"] = best_metric != "eval_loss"
    # --label_names is accepted for swift compatibility only: our labels are always the "label" column, and
    # passing swift's "labels" to transformers would make it look for a column that does not exist.
    if config.deepspeed:
        kwargs["deepspeed"] = distributed.resolve_deepspeed_config(config.deepspeed)
    if config.torch_dtype == "bfloat16":
        kwargs["bf16"] = True
    elif config.torch_dtype == "float16":
        kwargs["fp16"] = True
    kwargs.update(distributed.training_args_overrides(given=list(config.training_args)))  # gloo+use_cpu / nccl
    kwargs.update(config.training_args)
    import dataclasses

    known = {f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments)}
    kwargs = {k: v for k, v in kwargs.items() if k in known}  # e.g. save_safetensors is gone in transformers 5
    try:
        return SentenceTransformerTrainingArguments(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid training arguments: {err}") from None


def _write_card(folder: Path, run_dir: Path) -> None:
    """The card of ``folder``, the temporary folder that becomes ``run_dir/final`` (and names the card)."""
    final_dir = run_dir / FINAL_DIR
    try:
        from st_qwen3emb.model_card import write_model_card
    except ImportError:
        logger.warning("st_qwen3emb.model_card is not available; %s has no model card", final_dir)
        return
    write_model_card(folder, run_dir=run_dir, final_dir=final_dir)


def resume_checkpoint(config: RunConfig) -> Path | None:
    """The checkpoint ``--resume_from_checkpoint`` names (a checkpoint, a run folder or ``last``), found up front."""
    if not config.resume_from_checkpoint:
        return None
    from st_qwen3emb.checkpoint_marker import IncompleteCheckpoint

    try:
        return find_resume_checkpoint(config.resume_from_checkpoint, config.output_dir, say=_notice)
    except (FileNotFoundError, IncompleteCheckpoint) as err:
        raise ConfigError(str(err)) from None


def _notice(text: str) -> None:
    import sys

    print(f"st-qwen3emb sft: {text}", file=sys.stderr)


def with_lora(model, config: RunConfig):
    """``model`` with the LoRA adapter of ``--lora_rank/--lora_alpha/--lora_dropout/--target_modules``."""
    from st_qwen3emb.lora import add_lora

    targets = config.target_modules
    return add_lora(
        model,
        rank=config.lora_rank,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=list(targets) if len(targets) > 1 else targets[0],
    )




def start_run(
    config: RunConfig,
    build_args: Callable[[Path], Any],
    *,
    model,
    model_type: str | None,
    resume: Path | None,
    train_rows: int,
    eval_rows: int,
    record: dict[str, Any],
) -> tuple[Path, Any]:
    """The run folder and its training arguments (``build_args(run_dir)``), with args.json written in it.

    Shared by the embedding and reranker runs. Under several processes rank 0 creates the folder and every process
    gets its path, so all write checkpoints to one place; args.json is written once, by rank 0. Invalid training
    arguments remove the empty folder again. ``record``: the run's own entries for args.json.
    """
    if distributed.is_main_process():  # scratch folders a kill -9 left behind
        removed, freed = remove_stale_run_scratch(config.output_dir)
        if removed:
            _notice(f"removed {removed} scratch folder(s) left by killed runs under {config.output_dir} "
                    f"({freed / 2**20:.1f} MB freed)")
    run_dir = distributed.share_from_main(lambda: new_run_dir(config.output_dir))  # one folder for all processes
    try:
        args = build_args(run_dir)
    except ConfigError:
        if distributed.is_main_process():
            run_dir.rmdir()
        raise
    strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    resolved: RunRecord = {  # type: ignore[typeddict-item]  (plus every flag by its swift name)
        **config.to_args_json(),
        "model_type": model_type,
        "learning_rate": args.learning_rate,
        "eval_strategy": strategy,
        "eval_steps": args.eval_steps if strategy != "no" else None,
        "max_length": model.max_seq_length,
        "resume_from_checkpoint": str(resume) if resume else None,
        "train_rows": train_rows,
        "eval_rows": eval_rows,
        **record,
        "env": loss_environment(config.loss_type),
        EVAL_METRIC_KEY: {"name": _metric_key(args.metric_for_best_model), "greater_is_better": args.greater_is_better},
        "run_dir": str(run_dir),
        "st_qwen3emb_version": __version__,
    }
    if distributed.is_main_process():
        write_json_atomic(run_dir / ARGS_FILE, redact_mapping(resolved))  # never a --hub_token on disk
    return run_dir, args


def _metric_key(metric: str | None) -> str | None:
    """The logged key of ``metric_for_best_model`` (transformers accepts it with or without ``eval_``)."""
    if not metric:
        return None
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def check_flags(config: RunConfig) -> None:
    """The flags, swift's loss variables and the output folder: the checks that read no data and no model."""
    validate(config)
    try:
        check_output_dir(config.output_dir)
    except OSError as err:
        raise ConfigError(str(err)) from None


def run_trainer(
    model,
    args,
    loss,
    train_dataset,
    eval_dataset,
    evaluators: list,
    run_dir: Path,
    resume: Path | None,
    *,
    trainer_class: type | None = None,
    embedding_grad: str = "rows",
) -> Path:
    """Train with the swift callbacks, then link the best checkpoint and write ``final/`` (shared with rerankers).

    ``trainer_class``: ``SwiftTrainer`` by default; the reranker passes its CrossEncoder trainer.
    ``embedding_grad``: ``"rows"`` trains with the row-wise word-embedding gradient where it is exact
    (``st_qwen3emb.training.speed``), ``"dense"`` with PyTorch's dense one.
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from st_qwen3emb.runs import list_checkpoints
    from st_qwen3emb.training.callbacks import CurvesCallback, LossProgressCallback, SignalCallback, SwiftLogCallback
    from st_qwen3emb.training.history import carry_history, own_checkpoint
    from st_qwen3emb.training.saving import save_final
    from st_qwen3emb.training.trainer import train_staged

    if trainer_class is None:
        from st_qwen3emb.training.trainer import SwiftTrainer as trainer_class

    from st_qwen3emb import saved_config

    # Read before training: the final model's config.json keeps the base's (see st_qwen3emb.saved_config).
    base_config = saved_config.read_base_config(saved_config.base_name_or_path(model))
    log_cb = SwiftLogCallback(run_dir)
    if resume is not None and distributed.is_main_process():
        log_cb.records.extend(carry_history(resume, run_dir))  # the log and the curves continue the earlier run's
    signal_cb = SignalCallback()
    evaluates = str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "no" and bool(
        evaluators or eval_dataset is not None
    )
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        loss=loss,
        evaluator=(evaluators[0] if len(evaluators) == 1 else evaluators) or None,
        callbacks=[log_cb, signal_cb, CurvesCallback(run_dir, log_cb), saved_config.keep_token_ids(model)]
        + ([_evaluate_at_end_callback()] if evaluates else []),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    from st_qwen3emb.training.tokenize_once import cache_tokenisation

    cache_tokenisation(trainer, model)  # each text tokenised once across epochs and loss evaluations
    if not args.disable_tqdm:
        trainer.add_callback(LossProgressCallback())
    from st_qwen3emb.training.speed import row_embedding_grad

    if evaluates and resume is None:
        _log_baseline(trainer)
    with row_embedding_grad(
        model, enabled=embedding_grad == "rows", world_size=args.world_size, deepspeed=args.deepspeed
    ):
        try:
            train_staged(trainer, run_dir, resume)  # atomic checkpoints; a full disk keeps the weights where it can
        except Exception:
            if resume is not None and trainer.state.global_step == 0 and distributed.is_main_process():
                # the resume failed before its checkpoint's state was restored: the new folder holds only args.json
                # and the copied history, so it goes, and "last" keeps naming the checkpoint resumed from
                shutil.rmtree(run_dir, ignore_errors=True)
            raise

    best = trainer.state.best_model_checkpoint
    if best and Path(best).is_dir() and trainer.is_world_process_zero():
        # a resumed run's best may lie in the earlier run's folder: link to this run's own copy of it
        point_link(run_dir, BEST_LINK, own_checkpoint(Path(best), run_dir))
    if signal_cb.received is not None:
        checkpoints = list_checkpoints(run_dir)
        raise TrainingInterrupted(run_dir, checkpoints[-1] if checkpoints else None, signal_cb.received)
    with distributed.gathered_parameters(model):  # ZeRO-3: full weights on every process while rank 0 saves
        if trainer.is_world_process_zero():  # checks the free space first; a full disk says where the weights are

            def finish(tmp: Path) -> None:
                saved_config.keep_base_config(tmp, base_config)
                _write_card(tmp, run_dir)

            save_final(model, run_dir, step=trainer.state.global_step, write_card=finish)
    return run_dir


def _log_baseline(trainer) -> None:
    """Evaluate the untrained model and log it at step 0: the "before" of the closing summary and of the curves.

    The evaluators are called directly (as the trainer's evaluation loop calls them, ``eval_`` prefix included)
    rather than through ``trainer.evaluate``, which would prepare the model for the accelerator before training.
    """
    if trainer.evaluator is None or not trainer.is_world_process_zero():
        return
    metrics = trainer.evaluator(trainer.model)
    if not isinstance(metrics, dict):
        return
    logged = {k if k.startswith("eval_") else f"eval_{k}": v for k, v in metrics.items()}
    trainer.log(logged)


def _evaluate_at_end_callback():
    from transformers import TrainerCallback

    class EvaluateAtEnd(TrainerCallback):
        """Evaluate at the last step (the "after" of the closing summary), whatever ``--eval_steps`` is; with
        ``--eval_strategy epoch`` the last epoch's end already does."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps and str(getattr(args.eval_strategy, "value", "")) == "steps":
                control.should_evaluate = True

    return EvaluateAtEnd()
