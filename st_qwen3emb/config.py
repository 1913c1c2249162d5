"""The swift flag table and the frozen ``RunConfig`` it parses into — the only place that knows the flags.

Every ``st-qwen3emb sft`` flag is a field of ``RunConfig``; its help text, aliases (``--tuner_type`` for
``--train_type``, ``--max_seq_length`` for ``--max_length``), kind and choices live in the field's metadata,
so the parser, ``--help``, ``args.json`` and the training code read one table. Any other Hugging Face
``TrainingArguments`` flag (``--save_strategy no``, ``--bf16 true``, ``--lr_scheduler_type cosine``, ...) is
passed through by name, converted with transformers' own per-field argument types, and kept in
``RunConfig.training_args``. Unknown or misspelt flags are an error naming the closest match.

Parsing is pure Python (no torch); transformers is imported only when a pass-through flag must be looked up.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from st_qwen3emb import booleans

TASK_TYPES = ("embedding", "reranker", "generative_reranker")
EMBEDDING_TASK_TYPES = ("embedding",)
RERANKER_TASK_TYPES = ("reranker", "generative_reranker")
# The one table where the two model families meet: per task type, the function that trains it and the one that
# exports it, as "module:function" imported only when used, so the embedding modules never import the reranker wing.
# "check": everything train checks before it loads the model (the NPROC_PER_NODE launcher runs it before relaunching).
TASK_ENTRY_POINTS: dict[str, dict[str, str]] = {
    **{task: {"train": "st_qwen3emb.training.sft:train", "check": "st_qwen3emb.training.sft:check_inputs",
              "export": "st_qwen3emb.export:export"}
       for task in EMBEDDING_TASK_TYPES},
    **{task: {"train": "st_qwen3emb.reranker.train:train_reranker",
              "check": "st_qwen3emb.reranker.train:check_reranker_inputs",
              "export": "st_qwen3emb.reranker.export:export_reranker"}
       for task in RERANKER_TASK_TYPES},
}
TRAIN_TYPES = ("full", "lora")
LORA_FLAGS = ("lora_rank", "lora_alpha", "lora_dropout", "target_modules")
DEEPSPEED_NAMES = ("zero2", "zero3")
# swift's rule: LoRA trains far fewer weights and wants a larger step than full fine-tuning.
DEFAULT_LR = {"full": 1e-5, "lora": 1e-4}
# Our RunConfig owns these TrainingArguments fields (or must not be set by hand); passing them through is an error.
_OWNED_TRAINING_ARGS = {"prompts": "use --query_instruction / --document_instruction"}
_SEED_MAX = 2**32 - 1  # numpy's RandomState (data sampling) takes seeds in [0, 2**32 - 1]


class ConfigError(ValueError):
    """A command line that cannot become a run: the message names the flag and what to do."""


def task_entry_point(task_type: str, step: str) -> Callable[..., Any]:
    """The function that does ``step`` (``"train"``, ``"check"`` or ``"export"``) for ``task_type``, imported now."""
    import importlib

    if task_type not in TASK_ENTRY_POINTS:
        raise ConfigError(f"--task_type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
    module, function = TASK_ENTRY_POINTS[task_type][step].split(":")
    return getattr(importlib.import_module(module), function)


def _flag(
    default: Any, help: str, kind: str = "str", *, aliases: tuple[str, ...] = (), choices=None, swift: bool | str = True
) -> Any:
    """One flag. ``swift``: ms-swift has it under the same name (True), under another name in ms-swift 4 (that name),
    or not at all (False: a flag of this project only, left out of the card's ``swift sft`` command)."""
    metadata = {"help": help, "kind": kind, "aliases": aliases, "choices": choices, "swift": swift}
    if isinstance(default, (list, dict)):
        raise TypeError("flag defaults are immutable; use a tuple")
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """One training run, as given on the command line (swift flag names, no dashes).

    ``None`` means "not given; derive it" (see ``st_qwen3emb.training``), e.g. ``model_type`` is inferred from
    the model, ``learning_rate`` defaults by ``train_type`` and ``eval_steps`` follows ``save_steps``.
    ``explicit`` holds the names of the flags the user actually typed.
    """

    model: str | None = _flag(None, "base model: local folder or Hub id (required)")
    task_type: str = _flag("embedding", "what is trained", choices=TASK_TYPES)
    model_type: str | None = _flag(None, "qwen3_emb / qwen3_reranker; inferred from the model when omitted")
    train_type: str = _flag(
        "full", "full fine-tuning or LoRA", aliases=("tuner_type",), choices=TRAIN_TYPES, swift="tuner_type"
    )
    lora_rank: int = _flag(16, "LoRA rank (--train_type lora only)", "int")
    lora_alpha: int = _flag(32, "LoRA alpha (--train_type lora only)", "int")
    lora_dropout: float = _flag(0.1, "LoRA dropout (--train_type lora only)", "float")
    target_modules: tuple[str, ...] = _flag(
        ("all-linear",), "LoRA target modules (--train_type lora only); all-linear = every linear layer", "list"
    )
    dataset: tuple[str, ...] = _flag((), "training data: one or more id_or_path[:subset][#N] (required)", "list")
    val_dataset: tuple[str, ...] = _flag((), "evaluation data, same grammar as --dataset", "list")
    split_dataset_ratio: float = _flag(0.0, "fraction of the training data split off (with --seed) for evaluation", "float")
    eval_strategy: str | None = _flag(
        None, "no / steps / epoch; default steps when there is evaluation data", choices=("no", "steps", "epoch")
    )
    eval_steps: int | None = _flag(None, "evaluate every N optimizer steps (default: --save_steps)", "int")
    save_steps: int = _flag(500, "save a checkpoint every N optimizer steps", "int")
    num_train_epochs: float = _flag(3.0, "training epochs", "float")
    per_device_train_batch_size: int = _flag(8, "training batch size per device", "int")
    per_device_eval_batch_size: int = _flag(8, "evaluation batch size per device", "int")
    gradient_accumulation_steps: int = _flag(1, "micro-batches per optimizer step", "int")
    learning_rate: float | None = _flag(None, "peak learning rate (default 1e-5 full, 1e-4 lora)", "float")
    loss_type: str | None = _flag(None, "infonce, cosine_similarity, contrastive, ... (required)")
    label_names: tuple[str, ...] = _flag((), "accepted for swift compatibility (labels are the 'label' column)", "list")
    dataloader_drop_last: bool = _flag(False, "drop the last incomplete batch", "bool")
    max_length: int | None = _flag(
        None, "truncation length in tokens (Qwen3 default 512)", "int", aliases=("max_seq_length",)
    )
    output_dir: str = _flag("output", "runs go to OUTPUT_DIR/v<N>-<YYYYMMDD-HHMMSS>/")
    seed: int = _flag(42, "seed for the data split, data order and initialisation", "int")
    logging_steps: int = _flag(5, "log (and append to logging.jsonl) every N optimizer steps", "int")
    warmup_ratio: float = _flag(0.0, "fraction of the steps spent warming the learning rate up", "float")
    mrl_dims: str | None = _flag(None, "Matryoshka dims and weights as JSON, e.g. '{\"64\":1,\"256\":1}'")
    deepspeed: str | None = _flag(None, "zero2 / zero3 or a DeepSpeed JSON config path")
    resume_from_checkpoint: str | None = _flag(None, "a checkpoint folder, or 'last' for the newest under --output_dir")
    query_instruction: str | None = _flag(
        None, "Qwen3: task instruction for queries/anchors ('Instruct: {task}\\nQuery:'); used in training, eval, saved "
        "model; '' for bare text as swift trains", swift=False,
    )
    document_instruction: str | None = _flag(
        None, "Qwen3: task instruction for documents/positives (default: none for retrieval losses, STS for pair losses)",
        swift=False,
    )
    torch_dtype: str | None = _flag(
        None, "weights dtype", aliases=("dtype",), choices=("auto", "float32", "bfloat16", "float16")
    )
    attn_impl: str | None = _flag(None, "attention implementation (sdpa, eager, flash_attention_2)", aliases=("attn_implementation",))
    model_revision: str | None = _flag(None, "Hub revision of --model", aliases=("revision",))
    # ms-swift has no such flag (its model loaders decide per model), so the card's swift command leaves it out
    trust_remote_code: bool = _flag(False, "allow the model's own Python code to run", "bool", swift=False)
    embedding_grad: str = _flag(
        "rows",
        "word-embedding gradient: rows (only the batch's token rows are written; same math, faster) or dense",
        choices=("rows", "dense"),
        swift=False,
    )
    eval_sts: tuple[str, ...] = _flag(
        (), "extra STS sets (pairs + 0-5 or 0-1 scores) evaluated with Spearman", "list", swift=False
    )
    eval_retrieval: tuple[str, ...] = _flag(
        (), "extra BEIR folders (corpus.jsonl, queries.jsonl, qrels/) evaluated with nDCG@10", "list", swift=False
    )
    # not flags: what the parser collected
    training_args: Mapping[str, Any] = field(default_factory=dict, metadata={"kind": "internal"})
    explicit: frozenset[str] = field(default_factory=frozenset, metadata={"kind": "internal"})

    def to_args_json(self) -> dict[str, Any]:
        """The flat dict stored as ``args.json``: swift flag names without dashes, lists as lists."""
        out: dict[str, Any] = {}
        for f in flag_fields():
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out.update(self.training_args)
        return out

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def flag_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(RunConfig) if f.metadata.get("kind") not in (None, "internal")]


def swift_flag_name(name: str) -> str | None:
    """The ms-swift 4 spelling of flag ``name`` (``train_type`` -> ``tuner_type``), or None when swift has no such flag.

    A name that is not a ``RunConfig`` flag is a passed-through ``TrainingArguments`` flag, which swift's
    ``TrainArguments`` inherits under the same name.
    """
    by_name = {f.name: f for f in flag_fields()}
    if name not in by_name:
        return name
    swift = by_name[name].metadata["swift"]
    return None if swift is False else name if swift is True else str(swift)


def _flag_names() -> dict[str, str]:
    """Every spelling (name and aliases) -> field name."""
    names: dict[str, str] = {}
    for f in flag_fields():
        names[f.name] = f.name
        for alias in f.metadata["aliases"]:
            names[alias] = f.name
    return names


# --- value conversion ----------------------------------------------------------------------------
def parse_bool(flag: str, text: str) -> bool:
    try:
        return booleans.parse_bool(text)
    except ValueError:
        raise ConfigError(f"--{flag} expects {booleans.ACCEPTED}, got {text!r}") from None


def _convert(f: dataclasses.Field, values: list[str]) -> Any:
    kind, name = f.metadata["kind"], f.name
    if kind == "list":
        if not values:
            raise ConfigError(f"--{name} expects one or more values")
        return tuple(values)
    if kind == "bool" and not values:
        return True  # a bare --flag means true
    if len(values) != 1:
        raise ConfigError(f"--{name} expects one value, got {len(values)}: {' '.join(values) or '(none)'}")
    text = values[0]
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ConfigError(f"--{name} expects {'an integer' if kind == 'int' else 'a number'}, got {text!r}") from None
    if kind == "bool":
        return parse_bool(name, text)
    choices = f.metadata["choices"]
    if choices and text not in choices:
        close = difflib.get_close_matches(text, choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"--{name} must be one of {', '.join(choices)}; got {text!r}.{hint}")
    return text


_HF_ACTIONS: dict[str, Any] | None = None


def _training_arg_actions() -> dict[str, Any]:
    """argparse actions of SentenceTransformerTrainingArguments, as transformers builds them (types, choices)."""
    global _HF_ACTIONS
    if _HF_ACTIONS is None:
        from sentence_transformers import SentenceTransformerTrainingArguments
        from transformers import HfArgumentParser

        actions: dict[str, Any] = {}

        class _Recording(HfArgumentParser):
            # add_argument returns each Action it makes (argparse's public API), so no private list is read
            def add_argument(self, *args: Any, **kwargs: Any) -> Any:
                action = super().add_argument(*args, **kwargs)
                if action.option_strings and action.dest != "help":
                    actions[action.dest] = action  # the last wins, as for a bool its --no_ form
                return action

        _Recording(SentenceTransformerTrainingArguments)
        _HF_ACTIONS = actions
    return _HF_ACTIONS


def _convert_training_arg(name: str, values: list[str], action: Any) -> Any:
    if action.nargs in ("+", "*"):
        items = values
    elif not values and action.nargs == "?":
        return action.const if action.const is not None else True
    elif len(values) != 1:
        raise ConfigError(f"--{name} expects one value, got {len(values)}: {' '.join(values) or '(none)'}")
    else:
        items = values
    converted = []
    for text in items:
        try:
            value = action.type(text) if action.type is not None else text
        except (ValueError, TypeError, KeyError, argparse.ArgumentTypeError) as err:
            raise ConfigError(f"--{name}: invalid value {text!r} ({err})") from None
        if action.choices is not None and value not in action.choices:
            raise ConfigError(f"--{name} must be one of {', '.join(map(str, action.choices))}; got {text!r}")
        converted.append(value)
    return converted if action.nargs in ("+", "*") else converted[0]


# --- parsing ----------------------------------------------------------------------------------------
def _split_flags(argv: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``["--a", "1", "--b=2", "--c", "x", "y"]`` -> ``[("a", ["1"]), ("b", ["2"]), ("c", ["x", "y"])]``."""
    groups: list[tuple[str, list[str]]] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            groups.append((name.replace("-", "_"), [value] if eq else []))
        elif not groups:
            raise ConfigError(f"unexpected argument {token!r}: every value belongs to a --flag")
        else:
            groups[-1][1].append(token)
    return groups


def _unknown_flag(name: str) -> ConfigError:
    known = list(_flag_names())
    try:
        known += list(_training_arg_actions())
    except ImportError:
        pass
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    hint = f" Did you mean --{close[0]}?" if close else ""
    return ConfigError(f"unknown flag --{name}.{hint} ('st-qwen3emb sft --help' lists the flags)")


def parse_args(argv: Iterable[str]) -> RunConfig:
    """Parse swift-style flags into a ``RunConfig`` (checked with ``validate``)."""
    names = _flag_names()
    by_name = {f.name: f for f in flag_fields()}
    values: dict[str, Any] = {}
    training_args: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for raw, items in _split_flags(argv):
        if raw in names:
            target = names[raw]
            if target in seen:
                raise ConfigError(f"--{raw} given twice (also as --{seen[target]})")
            seen[target] = raw
            values[target] = _convert(by_name[target], items)
            continue
        if raw in _OWNED_TRAINING_ARGS:
            raise ConfigError(f"--{raw} is set by st-qwen3emb: {_OWNED_TRAINING_ARGS[raw]}")
        action = _training_arg_actions().get(raw)
        if action is None:
            raise _unknown_flag(raw)
        if raw in training_args:
            raise ConfigError(f"--{raw} given twice")
        training_args[raw] = _convert_training_arg(raw, items, action)
    config = RunConfig(**values, training_args=training_args, explicit=frozenset(values) | frozenset(training_args))
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Checks that need no model or data: missing required flags, impossible values, contradictions."""
    if not config.model:
        raise ConfigError("--model is required (a local folder or a Hub id)")
    if not config.dataset:
        raise ConfigError("--dataset is required (one or more files, folders or Hub ids)")
    if not config.loss_type:
        raise ConfigError("--loss_type is required (swift has no default loss): e.g. infonce or cosine_similarity")
    if config.train_type == "full":
        given = [name for name in LORA_FLAGS if name in config.explicit]
        if given:
            raise ConfigError(
                f"{', '.join('--' + n for n in given)} only apply to --train_type lora; this run is --train_type full"
            )
    for name, value in [(f.name, getattr(config, f.name)) for f in flag_fields()] + list(config.training_args.items()):
        check_number(name, value)
    if config.val_dataset and "split_dataset_ratio" in config.explicit and config.split_dataset_ratio > 0:
        raise ConfigError("give either --val_dataset or --split_dataset_ratio, not both")
    if config.eval_strategy in ("steps", "epoch") and not has_eval_data(config):
        raise ConfigError(
            f"--eval_strategy {config.eval_strategy} needs evaluation data: --val_dataset, --split_dataset_ratio, "
            "--eval_sts or --eval_retrieval"
        )
    if config.mrl_dims is not None:
        parse_mrl_dims(config.mrl_dims)
    check_environment()


@dataclass(frozen=True)
class NumberRange:
    """Where a number flag's values lie: ``low``/``high`` (None: unbounded), each bound included unless ``*_open``;
    ``also`` is one more allowed value (transformers' ``-1`` for "not set")."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: int | None = None

    def holds(self, value: float) -> bool:
        if value == self.also:
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        low, high = (f"{b:g}" if isinstance(b, float) else str(b) for b in (self.low, self.high))
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"{'<' if self.high_open else '<='} {high}" if self.high is not None else ""


_COUNT = NumberRange(1)
_ABOVE_ZERO = NumberRange(0, low_open=True)
_AT_LEAST_ZERO = NumberRange(0)
_FRACTION = NumberRange(0, 1, high_open=True)
# Every number flag of ours and the range-limited TrainingArguments ones; any other number must still be finite.
NUMBER_RANGES: dict[str, NumberRange] = {
    "lora_rank": _COUNT,
    "lora_alpha": _COUNT,
    "lora_dropout": _FRACTION,
    "split_dataset_ratio": _FRACTION,
    "eval_steps": _COUNT,
    "save_steps": _COUNT,
    "num_train_epochs": _ABOVE_ZERO,
    "per_device_train_batch_size": _COUNT,
    "per_device_eval_batch_size": _COUNT,
    "gradient_accumulation_steps": _COUNT,
    "learning_rate": _ABOVE_ZERO,
    "max_length": _COUNT,
    "seed": NumberRange(0, _SEED_MAX),
    "data_seed": NumberRange(0, _SEED_MAX),
    "logging_steps": _COUNT,
    "warmup_ratio": NumberRange(0, 1),
    # transformers' own: -1 max_steps means "train --num_train_epochs"; 0 would still train one step
    "max_steps": NumberRange(1, also=-1),
    "warmup_steps": _AT_LEAST_ZERO,
    "weight_decay": _AT_LEAST_ZERO,
    "adam_beta1": _FRACTION,
    "adam_beta2": _FRACTION,
    "adam_epsilon": _ABOVE_ZERO,
    "max_grad_norm": _AT_LEAST_ZERO,
    "label_smoothing_factor": _FRACTION,
    "save_total_limit": _COUNT,
    "eval_accumulation_steps": _COUNT,
    "eval_delay": _AT_LEAST_ZERO,
    "dataloader_num_workers": _AT_LEAST_ZERO,
    "dataloader_prefetch_factor": _COUNT,
    "torch_empty_cache_steps": _COUNT,
}


def check_number(name: str, value: Any) -> None:
    """A number flag must be finite and in its range (``NUMBER_RANGES``); non-numbers and None pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    wanted = NUMBER_RANGES.get(name, NumberRange())
    if math.isfinite(value) and wanted.holds(value):
        return
    noun = "an integer" if isinstance(value, int) else "a finite number"
    allowed = " ".join(filter(None, (noun, wanted.describe())))
    if wanted.also is not None:
        allowed += f" (or {wanted.also}: train --num_train_epochs)" if name == "max_steps" else f" (or {wanted.also})"
    raise ConfigError(f"--{name} must be {allowed}, got {value}")


def check_environment() -> None:
    """swift's loss and reranker-sampling variables (``INFONCE_*``, ``MAX_*_SAMPLES``, ``LISTWISE_RERANKER_*``) must
    hold valid values; checked with the flags, so a bad one stops the run before anything is loaded."""
    from st_qwen3emb.losses.env import check_variables

    try:
        check_variables()
    except ValueError as err:
        raise ConfigError(str(err)) from None


def has_eval_data(config: RunConfig) -> bool:
    return bool(config.val_dataset or config.split_dataset_ratio > 0 or config.eval_sts or config.eval_retrieval)


def parse_mrl_dims(text: str) -> dict[int, float]:
    """swift's ``--mrl_dims '{"64":1,"256":1}'`` (a JSON dict, or a JSON list of dims with weight 1).

    The losses package owns the parsing (``st_qwen3emb.losses.matryoshka.parse_mrl_dims``); here a bad value is
    a ``ConfigError``, so it is reported with the other flag errors before anything is loaded.
    """
    from st_qwen3emb.losses.matryoshka import parse_mrl_dims as parse

    try:
        return parse(text)
    except ValueError as err:
        raise ConfigError(f"--mrl_dims: {err}") from None


def infer_model_type(detected: str | None, task_type: str) -> str | None:
    """swift's ``--model_type`` from the transformers ``model_type`` (``qwen3`` -> ``qwen3_emb``)."""
    if detected != "qwen3":
        return None
    return "qwen3_reranker" if task_type in RERANKER_TASK_TYPES else "qwen3_emb"


def resolved_learning_rate(config: RunConfig) -> float:
    return config.learning_rate if config.learning_rate is not None else DEFAULT_LR[config.train_type]


def help_text() -> str:
    lines = [
        "usage: st-qwen3emb sft --model PATH_OR_ID --dataset SPEC [SPEC ...] --loss_type LOSS [FLAGS]",
        "",
        "Fine-tune an embedding (or reranker) model with ms-swift's 'swift sft' flags on sentence-transformers.",
        "Booleans take true/false. Any other transformers TrainingArguments flag (--save_strategy no, --bf16 true,",
        "--lr_scheduler_type cosine, --report_to none, --max_steps N, ...) is passed through by name.",
        "",
        "flags:",
    ]
    for f in flag_fields():
        spellings = " / ".join("--" + n for n in (f.name, *f.metadata["aliases"]))
        default = f.default if f.default is not dataclasses.MISSING else None
        choices = f.metadata["choices"]
        extra = f" {{{','.join(choices)}}}" if choices else ""
        shown = f" (default {list(default) if isinstance(default, tuple) else default})" if default not in (None, ()) else ""
        lines.append(f"  {spellings}{extra}")
        lines.append(f"      {f.metadata['help']}{shown}")
    return "\n".join(lines)


def given_flags(argv: Iterable[str]) -> dict[str, list[str]]:
    """The ``RunConfig`` flags on a command line by field name (aliases folded), with their value words."""
    names = _flag_names()
    return {names[name]: values for name, values in _split_flags(argv) if name in names}


def flags_from_args_json(args: Mapping[str, Any]) -> list[str]:
    """The ``st-qwen3emb sft`` flags, as argv words, that rebuild the run recorded in ``args`` (its ``args.json``).

    The ``RunConfig`` flags whose recorded value differs from the default (LoRA flags only for a LoRA run, never
    ``--resume_from_checkpoint``, which names a step of a run rather than the run) and the trainer flags passed
    through by name. Other keys record the run (rows, prompts, env, ...) and are not flags. ``parse_args`` of the
    result gives the recorded run's settings again; resuming relies on it.
    """
    fields = {f.name: f for f in flag_fields()}
    words: list[str] = []
    for name, value in args.items():
        if name == "resume_from_checkpoint" or value is None:
            continue
        if name in fields:
            if _same(value, fields[name].default) or (name in LORA_FLAGS and args.get("train_type") != "lora"):
                continue
        elif name in _OWNED_TRAINING_ARGS or name not in _training_arg_actions():
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            continue
        words += [f"--{name}", *(_flag_word(item) for item in items)]
    return words


def _same(value: Any, default: Any) -> bool:
    return (list(value) if isinstance(value, tuple) else value) == (list(default) if isinstance(default, tuple) else default)


def _flag_word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value)
    return str(value)


def override_flags(defaults: list[str], overrides: list[str]) -> list[str]:
    """``defaults`` with every flag the user gave in ``overrides`` replaced (aliases count as the same flag).

    The training scripts use it: their recipe is a list of swift flags, and any flag on their command line wins.
    """
    names = _flag_names()

    def canonical(name: str) -> str:
        return names.get(name, name)

    given = {canonical(name) for name, _ in _split_flags(overrides)}
    kept = [(name, values) for name, values in _split_flags(defaults) if canonical(name) not in given]
    return [token for name, values in kept for token in (f"--{name}", *values)] + list(overrides)
