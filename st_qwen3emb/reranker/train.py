"""``train_reranker(config)``: ``st-qwen3emb sft --task_type generative_reranker --loss_type pointwise_reranker|
listwise_reranker`` on sentence-transformers' ``CrossEncoderTrainer``.

The run layout, logging callbacks, atomic checkpoints and argument handling are the embedding trainer's
(``st_qwen3emb.training.run`` / ``trainer`` / ``callbacks``, ``st_qwen3emb.runs``); what differs is the model (a
CrossEncoder from ``load_reranker``), the data (swift's reranker groups, ``st_qwen3emb.reranker.data``), the losses
(``st_qwen3emb.reranker.losses``) and the evaluation: sentence-transformers' ``CrossEncoderRerankingEvaluator``
(MRR@10, nDCG@10, MAP over each query's candidate list) on ``--val_dataset``, on a ``--split_dataset_ratio`` split,
and on every ``--eval_retrieval`` folder (e.g. a maniscope ``*_rerank10`` set). ``--query_instruction`` is the
reranker's instruction; it is stored with the model, so training, evaluation and the saved model agree.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb.config import ConfigError, RunConfig, has_eval_data, infer_model_type

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)

RERANKER_LOSSES = ("pointwise_reranker", "listwise_reranker")
EVAL_AT_K = 10
BEST_METRIC_SUFFIX = f"ndcg@{EVAL_AT_K}"


def _check_model_type(config: RunConfig) -> None:
    """``--model`` must be a Qwen3 reranker (read from its config, nothing loaded); a bad path is an error."""
    from st_qwen3emb.model import read_model_type
    from st_qwen3emb.reranker.model import MODEL_TYPE_RERANKER

    detected = read_model_type(config.model, revision=config.model_revision, trust_remote_code=config.trust_remote_code)
    inferred = infer_model_type(detected, config.task_type)
    if config.model_type not in (None, MODEL_TYPE_RERANKER) or inferred != MODEL_TYPE_RERANKER:
        raise ConfigError(
            f"--task_type {config.task_type} trains Qwen3 rerankers (--model_type {MODEL_TYPE_RERANKER}); "
            f"{config.model} has transformers model_type {detected!r} and --model_type {config.model_type!r}"
        )


def _load_model(config: RunConfig) -> tuple[CrossEncoder, str | None]:
    from st_qwen3emb.reranker.model import MODEL_TYPE_RERANKER, load_reranker

    _check_model_type(config)
    model = load_reranker(
        config.model,
        instruction=config.query_instruction,
        max_length=config.max_length or _default_max_length(),
        dtype=config.torch_dtype,
        attn_implementation=config.attn_impl,
        revision=config.model_revision,
        trust_remote_code=config.trust_remote_code,
    )
    return model, MODEL_TYPE_RERANKER


def _default_max_length() -> int:
    from st_qwen3emb import protocol

    # Upstream's 8192 is an inference length; training at it runs out of memory on the first long row.
    return protocol.DEFAULT_MAX_SEQ_LENGTH


def _load_data(config: RunConfig) -> tuple[Any, list[dict] | None]:
    """Training rows (groups) and the evaluation samples, all checked before any model is loaded."""
    from st_qwen3emb.data import read_records
    from st_qwen3emb.reranker.data import groups_to_dataset, reranker_groups, reranking_samples

    records = list(read_records(list(config.dataset), seed=config.seed))
    eval_samples = None
    if config.val_dataset:
        eval_samples = reranking_samples(read_records(list(config.val_dataset), seed=config.seed, split="test"), seed=config.seed)
    elif config.split_dataset_ratio > 0:
        if len(records) < 2:
            raise ConfigError(f"--split_dataset_ratio needs at least 2 training queries, the data has {len(records)}")
        order = list(range(len(records)))
        random.Random(config.seed).shuffle(order)
        n_eval = max(1, round(len(records) * config.split_dataset_ratio))
        held = set(order[:n_eval])
        eval_samples = reranking_samples([records[i] for i in sorted(held)], seed=config.seed)
        records = [r for i, r in enumerate(records) if i not in held]
    train = groups_to_dataset(reranker_groups(records, seed=config.seed))
    return train, eval_samples


def _build_evaluators(config: RunConfig, eval_samples: list[dict] | None) -> list:
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    from st_qwen3emb.reranker.data import load_reranking_samples

    batch = config.per_device_eval_batch_size
    evaluators = []
    if eval_samples:
        evaluators.append(CrossEncoderRerankingEvaluator(eval_samples, at_k=EVAL_AT_K, name="rerank", batch_size=batch))
    if config.eval_sts:
        raise ConfigError("--eval_sts evaluates embeddings; a reranker is evaluated with --val_dataset / --eval_retrieval")
    for i, folder in enumerate(config.eval_retrieval):
        split = folder if ":" in str(folder) else f"{folder}:test"
        samples = load_reranking_samples(split, seed=config.seed)
        name = "retrieval" if len(config.eval_retrieval) == 1 else f"retrieval{i + 1}"
        evaluators.append(CrossEncoderRerankingEvaluator(samples, at_k=EVAL_AT_K, name=name, batch_size=batch))
    return evaluators


def build_reranker_training_args(config: RunConfig, run_dir: Path, *, eval_names: list[str]) -> Any:
    """The embedding trainer's arguments (same flags, same checks) as ``CrossEncoderTrainingArguments``."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    from st_qwen3emb.training.run import build_training_args

    base = build_training_args(config, run_dir, prompts={}, eval_enabled=has_eval_data(config),
                                best_metric=None)
    kwargs = {
        f.name: getattr(base, f.name)
        for f in dataclasses.fields(CrossEncoderTrainingArguments)
        if f.init and hasattr(base, f.name) and not f.name.startswith("_")
    }
    kwargs["prompts"] = None  # the instruction travels in the model's chat-template settings
    if kwargs.get("eval_strategy") not in (None, "no") and str(kwargs["eval_strategy"]) != "IntervalStrategy.NO":
        if eval_names and "metric_for_best_model" not in config.training_args:
            kwargs["metric_for_best_model"] = f"eval_{eval_names[0]}_{BEST_METRIC_SUFFIX}"
            kwargs["greater_is_better"] = True
    try:
        return CrossEncoderTrainingArguments(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid training arguments: {err}") from None


def reranker_trainer_class():
    """``CrossEncoderTrainer`` with the embedding trainer's atomic checkpoints and non-finite-loss stop."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    from st_qwen3emb.training.trainer import (
        AdapterCheckpoints,
        NonFiniteLossError,
        StagedCheckpoints,
        args_without_secrets,
    )

    class SwiftRerankerTrainer(AdapterCheckpoints, StagedCheckpoints, CrossEncoderTrainer):

        def _save(self, output_dir: str | None = None, state_dict=None) -> None:
            with args_without_secrets(self):  # training_args.bin never holds --hub_token
                super()._save(output_dir, state_dict)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
            loss = result[0] if isinstance(result, tuple) else result
            if model.training and not bool(torch.isfinite(loss.detach()).all()):
                raise NonFiniteLossError(self.state.global_step + 1, float(self.state.epoch or 0.0), float(loss.detach()))
            return result

    return SwiftRerankerTrainer


def _reranker_inputs(config: RunConfig) -> tuple[Path | None, Any, list[dict] | None, list]:
    """The resume checkpoint, training groups, evaluation samples and evaluators, each checked (no model needed)."""
    from st_qwen3emb.training.run import resume_checkpoint

    if config.loss_type not in RERANKER_LOSSES:
        raise ConfigError(f"--task_type {config.task_type} needs --loss_type {' or '.join(RERANKER_LOSSES)}, "
                          f"not {config.loss_type!r}")
    if config.mrl_dims:
        raise ConfigError("--mrl_dims applies to embedding models, not rerankers")
    if config.document_instruction is not None:
        raise ConfigError("--document_instruction does not apply to rerankers; the instruction is --query_instruction")
    resume = resume_checkpoint(config)
    train_dataset, eval_samples = _load_data(config)
    return resume, train_dataset, eval_samples, _build_evaluators(config, eval_samples)


def check_reranker_inputs(config: RunConfig) -> None:
    """What ``train_reranker`` checks before loading the model (see ``st_qwen3emb.training.sft.check_inputs``)."""
    from st_qwen3emb.training.run import check_flags

    check_flags(config)
    _reranker_inputs(config)
    _check_model_type(config)


def train_reranker(config: RunConfig) -> Path:
    """Train a Qwen3 reranker as ``swift sft --task_type generative_reranker`` would; return the run folder."""
    from st_qwen3emb.training.run import check_flags, run_trainer, start_run, with_lora

    check_flags(config)
    resume, train_dataset, eval_samples, evaluators = _reranker_inputs(config)
    model, model_type = _load_model(config)
    if config.train_type == "lora":
        model = with_lora(model, config)
    from st_qwen3emb.losses import build_loss

    loss = build_loss(config.loss_type, model)

    from st_qwen3emb.reranker.model import model_instruction

    run_dir, args = start_run(
        config,
        lambda folder: build_reranker_training_args(config, folder, eval_names=[e.name for e in evaluators]),
        model=model,
        model_type=model_type,
        resume=resume,
        train_rows=len(train_dataset),
        eval_rows=len(eval_samples or []),
        record={"reranker_instruction": model_instruction(model)},
    )
    return run_trainer(model, args, loss, train_dataset, None, evaluators, run_dir, resume,
                       trainer_class=reranker_trainer_class(), embedding_grad=config.embedding_grad)
