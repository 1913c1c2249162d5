"""``train(config)``: one swift-style embedding run on ``SentenceTransformerTrainer``.

Order matters: everything that can be wrong with the input (flags, resume path, loss name, data files, the
training arguments, the model) is checked before the run folder is created and before the first step, so a
bad command fails in seconds and leaves nothing behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from st_qwen3emb import distributed, protocol
from st_qwen3emb.config import (
    EMBEDDING_TASK_TYPES,
    ConfigError,
    RunConfig,
    has_eval_data,
    infer_model_type,
    parse_mrl_dims,
)
from st_qwen3emb.training.run import (
    build_training_args,
    check_flags,
    resume_checkpoint,
    run_trainer,
    start_run,
    with_lora,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

# Losses that compare the two sides of a pair as equals (STS-style): on Qwen3 both sides get the same instruction.
_SYMMETRIC_LABELS = ("similarity", "binary")


@dataclass(frozen=True)
class Prompts:
    """The prompt per dataset column during training/eval, and the prompts stored in the saved model."""

    columns: dict[str, str]
    saved: dict[str, str]
    anchor: str
    document: str


def resolve_prompts(
    *,
    symmetric: bool,
    is_qwen: bool,
    model_prompts: dict[str, str],
    query_instruction: str | None,
    document_instruction: str | None,
    columns: list[str],
) -> Prompts:
    """Which prompt each column gets, so training, evaluation and the saved model agree.

    sentence-transformers applies only ``TrainingArguments.prompts`` during training, never the model's own
    ``prompts``; a model trained without them and used with ``encode_query`` sees different inputs. So:

    - retrieval losses (infonce...): anchor -> the query prompt (``--query_instruction`` or the model's), positive
      and negatives -> the document prompt (``--document_instruction`` or the model's, bare for Qwen3);
    - pair losses (cosine_similarity, contrastive, cosent, ...) on Qwen3: both sides get
      ``Instruct: {--query_instruction or the STS instruction}\\nQuery:``, as upstream evaluates STS; a
      ``--document_instruction`` (``""`` for bare) overrides the second side. The saved model's ``STS`` and
      ``PairClassification`` prompts become that prompt (mteb uses them), ``query``/``document`` change only when
      the flags were given;
    - an empty instruction (``--query_instruction ""``) means bare text on that side, as swift trains;
    - other models: their own query/document prompts for retrieval losses, none for pair losses.
    """
    if not is_qwen and (query_instruction is not None or document_instruction is not None):
        raise ConfigError("--query_instruction / --document_instruction apply to Qwen3 models only")
    saved: dict[str, str] = {}
    if not is_qwen:
        anchor = "" if symmetric else model_prompts.get("query", "")
        document = "" if symmetric else model_prompts.get("document", "")
    elif symmetric:
        anchor = (
            protocol.query_prompt(protocol.SIMILARITY_INSTRUCTION)
            if query_instruction is None
            else _instruction_prompt(query_instruction)
        )
        document = anchor if document_instruction is None else _instruction_prompt(document_instruction)
        if document == anchor:
            saved.update({task_type: anchor for task_type in protocol.SYMMETRIC_TASK_TYPES})
        if query_instruction is not None:
            saved["query"] = anchor
        if document_instruction is not None:
            saved["document"] = document
    else:
        anchor = _instruction_prompt(query_instruction) if query_instruction is not None else model_prompts.get("query", "")
        if document_instruction is not None:
            document = _instruction_prompt(document_instruction)
        else:
            document = model_prompts.get("document", "")
        saved.update({"query": anchor, "document": document})
    per_column = {c: (anchor if c == "anchor" else document) for c in columns if c != "label"}
    return Prompts({c: p for c, p in per_column.items() if p}, saved, anchor, document)


def _instruction_prompt(instruction: str) -> str:
    return protocol.query_prompt(instruction) if instruction.strip() else ""


def _load_data(config: RunConfig) -> tuple[Dataset, Dataset | None]:
    from st_qwen3emb.data import load_dataset

    train = load_dataset(list(config.dataset), loss_type=config.loss_type, seed=config.seed)
    if config.val_dataset:
        return train, load_dataset(list(config.val_dataset), loss_type=config.loss_type, seed=config.seed, split="test")
    if config.split_dataset_ratio > 0:
        if len(train) < 2:
            raise ConfigError(f"--split_dataset_ratio needs at least 2 training rows, the data has {len(train)}")
        parts = train.train_test_split(test_size=config.split_dataset_ratio, seed=config.seed, shuffle=True)
        return parts["train"], parts["test"]
    return train, None


def _model_type(config: RunConfig) -> str | None:
    """swift's ``--model_type`` of ``--model`` (read from its config, nothing loaded); a bad path is an error."""
    from st_qwen3emb.model import read_model_type

    detected = read_model_type(config.model, revision=config.model_revision, trust_remote_code=config.trust_remote_code)
    inferred = infer_model_type(detected, config.task_type)
    if config.model_type is not None and config.model_type != inferred:
        raise ConfigError(
            f"--model_type {config.model_type} does not fit {config.model} (transformers model_type {detected!r}); "
            f"{'use --model_type ' + inferred if inferred else 'omit --model_type for non-Qwen3 models'}"
        )
    return config.model_type or inferred


def _load_model(config: RunConfig) -> tuple[SentenceTransformer, str | None]:
    from st_qwen3emb.model import load_model

    model_type = _model_type(config)
    is_qwen = model_type is not None
    model = load_model(
        config.model,
        max_seq_length=config.max_length,
        dtype=config.torch_dtype,
        attn_implementation=config.attn_impl,
        query_instruction=config.query_instruction if is_qwen else None,
        model_type="qwen3_emb" if is_qwen else None,
        revision=config.model_revision,
        trust_remote_code=config.trust_remote_code,
    )
    return model, model_type


def _build_evaluators(config: RunConfig, eval_dataset, prompts: Prompts, paired: bool) -> list:
    from st_qwen3emb.data import load_dataset
    from st_qwen3emb.training import evaluation

    batch = config.per_device_eval_batch_size
    evaluators = []
    if eval_dataset is not None:
        evaluators.append(
            evaluation.build_loss_evaluator(
                eval_dataset, paired=paired, anchor_prompt=prompts.anchor, document_prompt=prompts.document, batch_size=batch
            )
        )
    sts_prompt = prompts.anchor if paired else (prompts.saved.get("STS") or None)
    for i, spec in enumerate(config.eval_sts):
        sts = load_dataset(spec, loss_type="cosine_similarity", seed=config.seed, split="test")
        name = "sts" if len(config.eval_sts) == 1 else f"sts{i + 1}"
        evaluators.append(evaluation.build_sts_evaluator(sts, name=name, prompt=sts_prompt, batch_size=batch))
    for i, folder in enumerate(config.eval_retrieval):
        name = "retrieval" if len(config.eval_retrieval) == 1 else f"retrieval{i + 1}"
        evaluators.append(
            evaluation.build_retrieval_evaluator(
                folder, name=name, query_prompt=prompts.anchor, document_prompt=prompts.document, batch_size=batch
            )
        )
    return evaluators


def best_metric(config: RunConfig, has_eval_dataset: bool, paired: bool) -> str | None:
    """The metric that picks ``best-checkpoint``: swift's main eval metric, else the first extra evaluator's."""
    if has_eval_dataset:
        return "eval_spearman_cosine" if paired else "eval_margin"
    if config.eval_sts:
        return "eval_sts_spearman_cosine" if len(config.eval_sts) == 1 else "eval_sts1_spearman_cosine"
    if config.eval_retrieval:
        return "eval_retrieval_cosine_ndcg@10" if len(config.eval_retrieval) == 1 else "eval_retrieval1_cosine_ndcg@10"
    return None


def train(config: RunConfig) -> Path:
    """Run one training as ``swift sft`` would; return the run folder (the model is in ``<run>/final``).

    Raises ``ConfigError``, ``DatasetValidationError`` or ``ModelLoadError`` before training for bad input,
    ``NonFiniteLossError`` when the loss becomes NaN/inf, ``TrainingInterrupted`` after SIGINT/SIGTERM (a
    checkpoint has been saved).
    """
    check_flags(config)
    if config.task_type not in EMBEDDING_TASK_TYPES:  # st_qwen3emb.training.train routes by config.TASK_ENTRY_POINTS
        raise ConfigError(f"--task_type {config.task_type} is not an embedding run; use st_qwen3emb.train(config)")

    # --- checks that need no model -------------------------------------------------------------
    resume, mrl_dims, paired, train_dataset, eval_dataset = _embedding_inputs(config)
    if distributed.is_main_process() and (warning := subset_warning(config)):
        logger.warning(warning)

    # --- the model, LoRA, loss ---------------------------------------------------------------------
    model, model_type = _load_model(config)
    prompts = resolve_prompts(
        symmetric=paired,
        is_qwen=model_type is not None,
        model_prompts=dict(model.prompts),
        query_instruction=config.query_instruction,
        document_instruction=config.document_instruction,
        columns=list(train_dataset.column_names),
    )
    model.prompts = {**model.prompts, **prompts.saved}
    if config.train_type == "lora":
        model = with_lora(model, config)
    from st_qwen3emb.losses import build_loss

    loss = build_loss(config.loss_type, model, mrl_dims=mrl_dims)
    evaluators = _build_evaluators(config, eval_dataset, prompts, paired)

    # --- the run folder and the trainer ---------------------------------------------------------------
    run_dir, args = start_run(
        config,
        lambda folder: build_training_args(
            config,
            folder,
            prompts=prompts.columns,
            eval_enabled=has_eval_data(config),
            best_metric=best_metric(config, eval_dataset is not None, paired),
        ),
        model=model,
        model_type=model_type,
        resume=resume,
        train_rows=len(train_dataset),
        eval_rows=len(eval_dataset) if eval_dataset is not None else 0,
        record={"prompts": prompts.columns, "saved_prompts": dict(model.prompts)},
    )
    return run_trainer(
        model, args, loss, train_dataset, eval_dataset, evaluators, run_dir, resume,
        embedding_grad=config.embedding_grad,
    )


def check_inputs(config: RunConfig) -> None:
    """Everything ``train`` checks before it loads the model (flags, variables, output folder, resume checkpoint,
    data, the model's path and type), without loading the model or creating anything.

    The ``NPROC_PER_NODE`` launcher runs it before starting the workers, so bad input is reported exactly as in a
    single process: one ``ConfigError`` / ``DatasetValidationError`` / ``ModelLoadError``.
    """
    check_flags(config)
    _embedding_inputs(config)
    _model_type(config)


def _embedding_inputs(config: RunConfig) -> tuple[Path | None, dict[int, float] | None, bool, Dataset, Dataset | None]:
    """The resume checkpoint, Matryoshka dims, whether the loss is a symmetric pair loss, and the training and
    evaluation data, each checked."""
    resume = resume_checkpoint(config)
    from st_qwen3emb.losses import loss_spec

    try:
        spec = loss_spec(config.loss_type)
    except ValueError as err:
        raise ConfigError(f"--loss_type: {err}") from None
    if spec.task != "embedding":
        raise ConfigError(f"--loss_type {config.loss_type} is a reranker loss; use it with --task_type reranker")
    mrl_dims = parse_mrl_dims(config.mrl_dims) if config.mrl_dims else None
    train_dataset, eval_dataset = _load_data(config)
    return resume, mrl_dims, spec.label in _SYMMETRIC_LABELS, train_dataset, eval_dataset


def subset_warning(config: RunConfig) -> str | None:
    """One line when a ``:positive`` STS subset (every score >= 0.75) meets a loss that regresses on the score.

    swift accepts the pairing (its tutorial uses ``stsb:positive`` with ``cosine_similarity``), but the target then
    barely varies; infonce is what the subset is for.
    """
    from st_qwen3emb.data import parse_dataset_spec
    from st_qwen3emb.losses import loss_spec

    if loss_spec(config.loss_type).label not in ("similarity", "score"):
        return None
    positive = [spec for spec in config.dataset if "positive" in parse_dataset_spec(spec).subsets]
    if not positive:
        return None
    return (
        f"warning: --dataset {positive[0]} keeps only pairs scored >= 0.75, so the {config.loss_type} target barely "
        "varies; use --loss_type infonce for positive-only pairs, or the default subset (drop ':positive') for "
        f"{config.loss_type}"
    )


