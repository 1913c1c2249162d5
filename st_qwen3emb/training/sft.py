"""``train(config)``: one swift-style embedding run on ``SentenceTransformerTrainer``.

Order matters: everything that can be wrong with the input (flags, resume path, loss name, data files, the
training arguments, the model) is checked before the run folder is created and before the first step, so a
bad command fails in seconds and leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb import __version__, distributed, protocol
from st_qwen3emb.config import (
    RERANKER_TASK_TYPES,
    ConfigError,
    RunConfig,
    has_eval_data,
    infer_model_type,
    parse_mrl_dims,
    resolved_learning_rate,
    validate,
)
from st_qwen3emb.training.run_dir import (
    ARGS_FILE,
    BEST_LINK,
    FINAL_DIR,
    atomic_dir,
    find_resume_checkpoint,
    new_run_dir,
    point_link,
    write_json_atomic,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

# Losses that compare the two sides of a pair as equals (STS-style): on Qwen3 both sides get the same instruction.
_SYMMETRIC_LABELS = ("similarity", "binary")


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM stopped the run after saving ``checkpoint``; resume with ``--resume_from_checkpoint``."""

    def __init__(self, run_dir: Path, checkpoint: Path | None, signum: int):
        self.run_dir, self.checkpoint, self.signum = run_dir, checkpoint, signum
        where = f"checkpoint saved at {checkpoint}" if checkpoint else "no checkpoint could be saved"
        super().__init__(
            f"training interrupted; {where}. Continue with: st-qwen3emb sft ... --resume_from_checkpoint "
            f"{checkpoint or 'last'}"
        )


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


def _load_model(config: RunConfig) -> tuple[SentenceTransformer, str | None]:
    from st_qwen3emb.model import load_model, read_model_type

    detected = read_model_type(config.model, revision=config.model_revision, trust_remote_code=config.trust_remote_code)
    inferred = infer_model_type(detected, config.task_type)
    model_type = config.model_type or inferred
    if config.model_type is not None and config.model_type != inferred:
        raise ConfigError(
            f"--model_type {config.model_type} does not fit {config.model} (transformers model_type {detected!r}); "
            f"{'use --model_type ' + inferred if inferred else 'omit --model_type for non-Qwen3 models'}"
        )
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


def _write_card(final_dir: Path, run_dir: Path) -> None:
    try:
        from st_qwen3emb.model_card import write_model_card
    except ImportError:
        logger.warning("st_qwen3emb.model_card is not available; %s has no model card", final_dir)
        return
    write_model_card(final_dir, run_dir=run_dir)


def resume_checkpoint(config: RunConfig) -> Path | None:
    """The checkpoint ``--resume_from_checkpoint`` names (a checkpoint, a run folder or ``last``), found up front."""
    if not config.resume_from_checkpoint:
        return None
    try:
        return find_resume_checkpoint(config.resume_from_checkpoint, config.output_dir)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None


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


def loss_environment(loss_type: str) -> dict[str, Any]:
    """The environment-variable settings (swift's spelling) the loss and the data sampling use in this run.

    swift's losses read these variables instead of flags, so args.json records the values in effect (variable or
    default) under ``"env"``; the model card shows them and puts them in front of the reproduced command.
    """
    env: dict[str, Any] = {}
    if "infonce" in loss_type:
        from st_qwen3emb.losses.env import ENV_VARIABLES, resolve_infonce_options

        options = resolve_infonce_options()
        env.update({name: getattr(options, field) for field, name in ENV_VARIABLES.items()})
    elif loss_type == "distill_kl":
        from st_qwen3emb.losses.distill_kl import ENV_VARIABLES as DISTILL_ENV
        from st_qwen3emb.losses.distill_kl import resolve_temperatures

        env.update(zip(DISTILL_ENV.values(), resolve_temperatures(None, None), strict=True))
    elif loss_type in ("pointwise_reranker", "listwise_reranker"):
        from st_qwen3emb.data.reranker import MAX_NEGATIVE_ENV, MAX_POSITIVE_ENV, sample_limits

        env[MAX_POSITIVE_ENV], env[MAX_NEGATIVE_ENV] = sample_limits()
        if loss_type == "listwise_reranker":
            from st_qwen3emb.losses import reranker as losses

            env[losses.TEMPERATURE_ENV] = losses.env_number(losses.TEMPERATURE_ENV, losses.DEFAULT_TEMPERATURE, float)
            env[losses.MIN_GROUP_SIZE_ENV] = losses.env_number(
                losses.MIN_GROUP_SIZE_ENV, losses.DEFAULT_MIN_GROUP_SIZE, int
            )
    return {name: value for name, value in env.items() if value is not None}


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
    run_dir = distributed.share_from_main(lambda: new_run_dir(config.output_dir))  # one folder for all processes
    try:
        args = build_args(run_dir)
    except ConfigError:
        if distributed.is_main_process():
            run_dir.rmdir()
        raise
    strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    resolved = {
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
        "run_dir": str(run_dir),
        "st_qwen3emb_version": __version__,
    }
    if distributed.is_main_process():
        write_json_atomic(run_dir / ARGS_FILE, resolved)
    return run_dir, args


def train(config: RunConfig) -> Path:
    """Run one training as ``swift sft`` would; return the run folder (the model is in ``<run>/final``).

    Raises ``ConfigError``, ``DatasetValidationError`` or ``ModelLoadError`` before training for bad input,
    ``NonFiniteLossError`` when the loss becomes NaN/inf, ``TrainingInterrupted`` after SIGINT/SIGTERM (a
    checkpoint has been saved).
    """
    validate(config)
    if config.task_type in RERANKER_TASK_TYPES:
        from st_qwen3emb.training.reranker import train_reranker

        return train_reranker(config)

    # --- checks that need no model -------------------------------------------------------------
    resume = resume_checkpoint(config)
    from st_qwen3emb.losses import loss_spec

    try:
        spec = loss_spec(config.loss_type)
    except ValueError as err:
        raise ConfigError(f"--loss_type: {err}") from None
    if spec.task != "embedding":
        raise ConfigError(f"--loss_type {config.loss_type} is a reranker loss; use it with --task_type reranker")
    mrl_dims = parse_mrl_dims(config.mrl_dims) if config.mrl_dims else None
    paired = spec.label in _SYMMETRIC_LABELS
    train_dataset, eval_dataset = _load_data(config)

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

    from st_qwen3emb.training.callbacks import CurvesCallback, LossProgressCallback, SignalCallback, SwiftLogCallback
    from st_qwen3emb.training.run_dir import list_checkpoints

    if trainer_class is None:
        from st_qwen3emb.training.trainer import SwiftTrainer as trainer_class

    log_cb = SwiftLogCallback(run_dir)
    signal_cb = SignalCallback()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        loss=loss,
        evaluator=(evaluators[0] if len(evaluators) == 1 else evaluators) or None,
        callbacks=[log_cb, signal_cb, CurvesCallback(run_dir, log_cb)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    from st_qwen3emb.training.tokenize_once import cache_tokenisation

    cache_tokenisation(trainer, model)  # each text tokenised once across epochs and loss evaluations
    if not args.disable_tqdm:
        trainer.add_callback(LossProgressCallback())
    from st_qwen3emb.training.speed import row_embedding_grad

    with row_embedding_grad(
        model, enabled=embedding_grad == "rows", world_size=args.world_size, deepspeed=args.deepspeed
    ):
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    if trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint).is_dir():
        point_link(run_dir, BEST_LINK, Path(trainer.state.best_model_checkpoint))
    if signal_cb.received is not None:
        checkpoints = list_checkpoints(run_dir)
        raise TrainingInterrupted(run_dir, checkpoints[-1] if checkpoints else None, signal_cb.received)
    with distributed.gathered_parameters(model):  # ZeRO-3: full weights on every process while rank 0 saves
        if trainer.is_world_process_zero():
            with atomic_dir(run_dir / FINAL_DIR) as tmp:
                model.save(str(tmp))
                _write_card(tmp, run_dir)
    return run_dir
