"""The model card (``README.md``) of an exported model, built from what was measured.

``write_model_card`` reads only real artefacts: the model folder (modules, prompts, pooling, configs), the training
run (``args.json``, ``logging.jsonl``, ``training_curves.png``) and evaluation summaries (``st-qwen3emb-eval/1``
JSON). A section whose data is absent is left out or says "not evaluated"; no number is ever made up.

The Hub metadata is built with ``huggingface_hub.ModelCardData`` / ``EvalResult`` so ``model-index`` follows the
Hub's eval-results schema. sentence-transformers writes its own generic card on ``save``; ours replaces it because
that one knows nothing of the Qwen3 prompts, the training run or the evaluation summaries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from st_qwen3emb import protocol
from st_qwen3emb.card_markdown import cell, code, code_block, plain
from st_qwen3emb.config import RERANKER_TASK_TYPES
from st_qwen3emb.redaction import redact_mapping, redact_text
from st_qwen3emb.runs import (
    ARGS_FILE,
    CURVES_FILE,
    FINAL_DIR,
    LAST_LINK,
    LOG_FILE,
    RunRecordError,
    find_run_dir,
    read_run_args,
)

CARD_FILENAME = "README.md"
CURVES_FILENAME = CURVES_FILE
QWEN3_LICENSE = "apache-2.0"  # every Qwen3 / Qwen3-Embedding / Qwen3-Reranker release is Apache-2.0

# args.json keys that record the run rather than configure it (contract 4), so they are not flags of the commands;
# other keys that are not RunConfig flags are trainer pass-through flags (``--warmup_steps`` ...) and are kept
_RUN_RECORD_KEYS = ("train_rows", "eval_rows", "st_qwen3emb_version", "prompts", "saved_prompts", "run_dir", "env",
                    "resume_from_checkpoint", "reranker_instruction")
_REQUIRED_FLAGS = ("model", "task_type", "dataset", "loss_type")
# Hub task ids for the evaluation task types of contract 7 (the names sentence-transformers' own cards use)
_HUB_TASKS = {
    "STS": ("semantic-similarity", "Semantic Similarity"),
    "Retrieval": ("information-retrieval", "Information Retrieval"),
    "Reranking": ("reranking", "Reranking"),
    "PairClassification": ("binary-classification", "Binary Classification"),
    "Classification": ("text-classification", "Classification"),
    "Clustering": ("clustering", "Clustering"),
}

QWEN3_EMBEDDING_BIBTEX = """@article{qwen3embedding,
  title={Qwen3 Embedding: Advancing Text Embedding and Reranking Through Foundation Models},
  author={Zhang, Yanzhao and Li, Mingxin and Long, Dingkun and Zhang, Xin and Lin, Huan and Yang, Baosong and Xie, Pengjun and Yang, An and Liu, Dayiheng and Lin, Junyang and Huang, Fei and Zhou, Jingren},
  journal={arXiv preprint arXiv:2506.05176},
  year={2025}
}"""
SENTENCE_TRANSFORMERS_BIBTEX = """@inproceedings{reimers-2019-sentence-bert,
  title={Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks},
  author={Reimers, Nils and Gurevych, Iryna},
  booktitle={Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing},
  month={11},
  year={2019},
  publisher={Association for Computational Linguistics},
  url={https://arxiv.org/abs/1908.10084}
}"""


class CardInputError(ValueError):
    """An artefact the card is built from is missing or malformed; the message names the file and field."""


# --- reading artefacts ------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    """A JSON file's content, ``None`` when it does not exist; ``CardInputError`` naming the file when malformed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise CardInputError(f"{path}: not valid JSON ({err})") from err


@dataclass
class ModelFacts:
    """What the model folder itself says about the model."""

    folder: Path
    prompts: dict[str, str] = field(default_factory=dict)
    similarity: str | None = None
    saved_versions: dict[str, str] = field(default_factory=dict)
    pooling_mode: str | None = None
    dimension: int | None = None
    max_seq_length: int | None = None
    model_type: str | None = None
    adapter_base: str | None = None  # base_model_name_or_path of an unmerged LoRA adapter
    has_full_weights: bool = False

    @property
    def is_qwen3(self) -> bool:
        return self.model_type == "qwen3"


def read_model_facts(model_dir: Path) -> ModelFacts:
    modules = read_json(model_dir / "modules.json")
    if not isinstance(modules, list):
        raise CardInputError(f"{model_dir}: no modules.json; a model card is written into a sentence-transformers folder")
    facts = ModelFacts(folder=model_dir)
    st_config = read_json(model_dir / "config_sentence_transformers.json") or {}
    facts.prompts = dict(st_config.get("prompts") or {})
    facts.similarity = st_config.get("similarity_fn_name")
    facts.saved_versions = dict(st_config.get("__version__") or {})
    for entry in modules:
        sub = model_dir / entry.get("path", "")
        kind = str(entry.get("type", ""))
        if kind.endswith("Transformer"):
            config = read_json(sub / "config.json")
            adapter = read_json(sub / "adapter_config.json")
            facts.model_type = (config or {}).get("model_type")
            facts.has_full_weights = config is not None and any(sub.glob("model*.safetensors"))
            if adapter:
                facts.adapter_base = adapter.get("base_model_name_or_path")
            bert = read_json(sub / "sentence_bert_config.json") or {}
            tokenizer = read_json(sub / "tokenizer_config.json") or {}
            # sentence-transformers 6 keeps the length in the tokenizer config; older versions in sentence_bert_config
            length = bert.get("max_seq_length") or tokenizer.get("model_max_length")
            facts.max_seq_length = length if isinstance(length, int) and length < 10**7 else None  # 1e30 = "no limit"
        elif kind.endswith("Pooling"):
            pooling = read_json(sub / "config.json") or {}
            facts.pooling_mode = pooling.get("pooling_mode")
            facts.dimension = pooling.get("embedding_dimension") or pooling.get("word_embedding_dimension")
    if facts.model_type is None and facts.adapter_base:
        base_dir = Path(facts.adapter_base)
        facts.model_type = ((read_json(base_dir / "config.json") or {}) if base_dir.is_dir() else {}).get("model_type")
    return facts


@dataclass
class RunInfo:
    run_dir: Path
    args: dict[str, Any]
    log: list[dict[str, Any]]
    curves: Path | None


def read_run(run_dir: Path) -> RunInfo:
    try:
        args = read_run_args(run_dir)
    except RunRecordError as err:
        raise CardInputError(str(err)) from err
    if args is None:
        raise CardInputError(f"{run_dir / ARGS_FILE}: missing or not a JSON object (training run layout)")
    args = redact_mapping(args)  # a run recorded before redaction existed may still hold a token
    log: list[dict[str, Any]] = []
    log_path = run_dir / LOG_FILE
    if log_path.is_file():
        for number, line in enumerate(log_path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise CardInputError(f"{log_path}, line {number}: not valid JSON ({err})") from err
            if isinstance(entry, dict):
                log.append(entry)
    curves = run_dir / CURVES_FILENAME
    return RunInfo(run_dir, args, log, curves if curves.is_file() else None)


@dataclass
class EvalEntry:
    model: str
    model_name: str
    task: str
    task_type: str
    dataset: dict[str, Any]
    main_metric: str
    main_score: float
    metrics: dict[str, float]
    instruction: str | None
    source: Path


def read_eval_summary(path: Path) -> list[EvalEntry]:
    """The result entries of one evaluation summary (contract 7), with errors naming the file, entry and field.

    The evaluation package's ``read_summary`` checks the contract; this adds what the card relies on (a dataset
    name and type for the Hub's model-index, numeric scores).
    """
    from st_qwen3emb.evaluation.summary import SummaryFormatError, read_summary

    if not path.is_file():
        raise CardInputError(f"{path}: evaluation summary not found")
    try:
        results = read_summary(path)["results"]
    except SummaryFormatError as err:
        raise CardInputError(str(err)) from err
    entries = []
    for number, item in enumerate(results, start=1):
        where = f"{path}, result {number}"
        dataset = item["dataset"]
        if not dataset.get("name") or not dataset.get("type"):
            raise CardInputError(f"{where}: field 'dataset' needs 'name' and 'type'")
        try:
            main_score = float(item["main_score"])
            metrics = {str(k): float(v) for k, v in item["metrics"].items() if v is not None}
        except (TypeError, ValueError) as err:
            raise CardInputError(f"{where}: field 'metrics' holds a value that is not a number ({err})") from err
        entries.append(
            EvalEntry(
                model=str(item["model"]),
                model_name=str(item.get("model_name") or item["model"]),
                task=str(item["task"]),
                task_type=str(item["task_type"]),
                dataset=dataset,
                main_metric=str(item["main_metric"]),
                main_score=main_score,
                metrics=metrics,
                instruction=item.get("instruction"),
                source=path,
            )
        )
    return entries


# --- identity, license, datasets --------------------------------------------------------------------
def _is_local_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.exists(os.path.expanduser(name))


def is_hub_id(name: str) -> bool:
    """Whether ``name`` is a well-formed Hub repository id and not a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if _is_local_path(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_base_model_name(base: str) -> None:
    """Refuse a ``--base_model`` that is neither an existing local folder nor a well-formed Hub id."""
    if not _is_local_path(base) and not is_hub_id(base):
        raise CardInputError(f"--base_model {base!r} is neither an existing local folder nor a Hub id "
                             "('owner/name' of letters, digits, '-', '_' and '.')")


def public_path(value: str) -> str:
    """A local path as it may be published: its final component (``/home/me/data/pairs.jsonl`` -> ``pairs.jsonl``);
    anything else unchanged."""
    if not value or not _is_local_path(value):
        return value
    return os.path.basename(value.rstrip("/\\")) or value


def _public_value(value: Any) -> Any:
    if isinstance(value, str):
        return public_path(value)
    if isinstance(value, (list, tuple)):
        return [_public_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _public_value(v) for k, v in value.items()}
    return value


def _same_model(reference: str | Path | None, name: str) -> bool:
    if not reference:
        return False
    if str(reference) == name:
        return True
    try:
        return Path(os.path.expanduser(name)).resolve() == Path(os.path.expanduser(str(reference))).resolve()
    except OSError:
        return False


def _front_matter(readme: Path) -> dict[str, Any]:
    if not readme.is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except Exception:  # a foreign README with broken YAML must not stop the card; it just yields no metadata
        return {}


def is_replaceable_card(readme: Path) -> bool:
    """Whether ``readme`` may be overwritten by a new card: a card this project wrote (tagged ``st-qwen3emb``) or the
    one sentence-transformers writes with every saved model. A README the user wrote is theirs: never replaced."""
    meta = _front_matter(readme)
    tags = meta.get("tags") or []
    if "st-qwen3emb" in tags:
        return True
    try:
        text = readme.read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return False
    return meta.get("library_name") == "sentence-transformers" and "www.sbert.net" in text


def _base_metadata(base: str | None) -> dict[str, Any]:
    """The base model's own card metadata: its local folder's README, or the Hub cache (never the network)."""
    if not base:
        return {}
    if not is_hub_id(base):
        if not _is_local_path(base):
            return {}  # neither a folder nor a Hub id: nothing to read
        return _front_matter(Path(os.path.expanduser(base)) / CARD_FILENAME)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(base, CARD_FILENAME)
    return _front_matter(Path(cached)) if isinstance(cached, str) else {}


def _hub_datasets(specs: Iterable[str]) -> list[str]:
    """Hub dataset ids among ``--dataset`` specs (local files and ModelScope ids are not Hub datasets)."""
    from st_qwen3emb.data.spec import parse_dataset_spec

    ids = []
    for spec in specs:
        try:
            parsed = parse_dataset_spec(spec)
        except ValueError:
            continue  # not a spec the loader takes, so not a Hub dataset this run used
        name = parsed.name
        if parsed.is_local or parsed.hub == "ms" or _is_local_path(name) or Path(name).suffix:
            continue
        if name not in ids:
            ids.append(name)
    return ids


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


# --- rebuilt commands -------------------------------------------------------------------------------
def _shell_quote(text: str) -> str:
    """``shlex.quote``, except that text with control characters (a newline in a file name) becomes bash's
    ``$'...'`` form: the command stays on its line and still passes the exact text."""
    if not any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return shlex.quote(text)
    escaped = "".join(
        "\\\\" if ch == "\\" else "\\'" if ch == "'" else f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch
        for ch in text
    )
    return f"$'{escaped}'"


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(_flag_value(v) for v in value)
    if isinstance(value, dict):
        return shlex.quote(json.dumps(value, separators=(",", ":")))
    return _shell_quote(str(value))


def _env_settings(args: dict[str, Any], prefixes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Loss settings swift reads from the environment (``INFONCE_*``, the reranker's) as args.json records them:
    flat keys in any case (``infonce_temperature``) or an ``env`` object; ``prefixes`` defaults to the loss's."""
    prefixes = _loss_env_prefixes(args) if prefixes is None else prefixes
    if not prefixes:
        return {}
    found = {k.upper(): v for k, v in args.items() if k.upper().startswith(prefixes) and v is not None}
    env = args.get("env")
    if isinstance(env, dict):
        found.update({k.upper(): v for k, v in env.items() if k.upper().startswith(prefixes) and v is not None})
    return found


def _uses_infonce(args: dict[str, Any]) -> bool:
    return "infonce" in str(args.get("loss_type") or "")


def _loss_env_prefixes(args: dict[str, Any]) -> tuple[str, ...]:
    """The environment variables the run's loss reads, as its ``LossSpec`` declares them."""
    from st_qwen3emb.losses import LOSS_SPECS

    spec = LOSS_SPECS.get(str(args.get("loss_type") or ""))
    return spec.env if spec is not None else ()


def _all_loss_env() -> tuple[str, ...]:
    from st_qwen3emb.losses import LOSS_ENV_VARIABLES

    return LOSS_ENV_VARIABLES


def command_flags(args: dict[str, Any], *, swift: bool) -> list[tuple[str, Any]]:
    """(flag, value) pairs of the run's command line, in args.json order.

    st-qwen3emb: the RunConfig flags that differ from their defaults (plus the required ones) and the trainer
    pass-through flags. swift: every flag swift has (``st_qwen3emb.config.swift_flag_name``), under its ms-swift 4
    name, with its value, because swift's defaults differ from ours (learning rate, max_length, InfoNCE temperature).
    Both leave out the LoRA flags of a full fine-tuning run and every secret (``st_qwen3emb.redaction``).
    """
    from st_qwen3emb.config import LORA_FLAGS, flag_fields, swift_flag_name

    defaults = {f.name: f.default for f in flag_fields()}
    lora_run = args.get("train_type") == "lora"
    pairs = []
    for key, value in redact_mapping(args).items():
        if value is None or key in _RUN_RECORD_KEYS or key.upper().startswith(_all_loss_env()):
            continue
        if isinstance(value, (list, tuple)) and not value:
            continue
        if isinstance(value, dict) and key not in defaults:
            continue  # a structured run record, not a flag
        if key in LORA_FLAGS and not lora_run:
            continue  # recorded with their defaults on every run; they configure nothing on a full run
        if swift:
            name = swift_flag_name(key)
            if name is not None:
                pairs.append((name, value))
            continue
        default = defaults.get(key, None)
        if key in defaults and key not in _REQUIRED_FLAGS and _same_value(value, default):
            continue
        pairs.append((key, value))
    return pairs


def _same_value(value: Any, default: Any) -> bool:
    if isinstance(default, tuple):
        default = list(default)
    return value == default


def build_command(args: dict[str, Any], program: str) -> str:
    """The ``st-qwen3emb sft`` or ``swift sft`` command line that reproduces the run recorded in ``args``."""
    env = _env_settings(args)
    head = " ".join(f"{k}={_flag_value(v)}" for k, v in env.items())
    lines = [f"{head} {program}" if head else program]
    lines += [f"    --{key} {_flag_value(value)}" for key, value in command_flags(args, swift=program.startswith("swift"))]
    return " \\\n".join(lines)


# --- evaluation -------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _columns(entries: list[EvalEntry], model_dir: Path, base: str | None) -> list[tuple[str, str]]:
    """Ordered (model key, column title): base first, then this model, then any others in file order."""
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.model in seen:
            continue
        if _same_model(model_dir, entry.model):
            seen[entry.model] = f"{entry.model_name} (this model)"
        elif _same_model(base, entry.model):
            seen[entry.model] = f"{entry.model_name} (base)"
        else:
            seen[entry.model] = entry.model_name
    order = {key: (0 if title.endswith("(base)") else 1 if title.endswith("(this model)") else 2) for key, title in seen.items()}
    return sorted(seen.items(), key=lambda item: order[item[0]])


def _dataset_label(dataset: dict[str, Any]) -> str:
    split = f" ({dataset['split']})" if dataset.get("split") else ""
    return f"{dataset['name']}{split}"


def evaluation_table(entries: list[EvalEntry], model_dir: Path, base: str | None) -> str:
    columns = _columns(entries, model_dir, base)
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for entry in entries:
        key = (entry.task, _dataset_label(entry.dataset), entry.main_metric)
        rows.setdefault(key, {})[entry.model] = entry.main_score
    header = "| task | dataset | metric | " + " | ".join(cell(plain(title)) for _, title in columns) + " |"
    lines = [header, "|" + " --- |" * (3 + len(columns))]
    for (task, dataset, metric), scores in rows.items():
        cells = [_fmt(scores[model]) if model in scores else "not evaluated" for model, _ in columns]
        names = " | ".join(cell(plain(text)) for text in (task, dataset, metric))
        lines.append(f"| {names} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _hub_dataset_type(dataset: dict[str, Any]) -> str:
    kind = str(dataset["type"])
    return Path(kind).name if _is_local_path(kind) else kind  # never publish a local filesystem path


def eval_results(entries: list[EvalEntry]) -> list[Any]:
    from huggingface_hub import EvalResult

    results = []
    for entry in entries:
        task_type, task_name = _HUB_TASKS.get(entry.task_type, (entry.task_type.lower(), entry.task_type))
        metrics = dict(entry.metrics)
        metrics.setdefault(entry.main_metric, entry.main_score)
        for metric, value in metrics.items():
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=_hub_dataset_type(entry.dataset),
                    dataset_name=str(entry.dataset["name"]),
                    dataset_split=entry.dataset.get("split"),
                    dataset_config=entry.dataset.get("config"),
                    metric_type=metric,
                    metric_name=metric.replace("_", " ").title(),
                    metric_value=value,
                )
            )
    return results


# --- the card ---------------------------------------------------------------------------------------
def _versions(facts: ModelFacts, run: RunInfo | None) -> dict[str, str]:
    versions = {"st-qwen3emb": str((run.args.get("st_qwen3emb_version") if run else None) or _package_version())}
    versions.update({name.replace("_", "-"): str(v) for name, v in facts.saved_versions.items()})
    for package in ("peft", "huggingface_hub"):
        try:
            versions.setdefault(package.replace("_", "-"), metadata.version(package))
        except metadata.PackageNotFoundError:
            pass
    versions.setdefault("python", sys.version.split()[0])
    return versions


def _package_version() -> str:
    from st_qwen3emb import __version__

    return __version__


def _usage_embedding(facts: ModelFacts, model_ref: str, adapter_base: str | None = None) -> list[str]:
    """``adapter_base``: the adapter's base as it may be published (default: as recorded)."""
    adapter_base = adapter_base or facts.adapter_base
    lines = ["## Usage", "", "### Sentence Transformers", ""]
    query_prompt = facts.prompts.get("query")
    lines += [
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        f"model = SentenceTransformer({model_ref!r})",
        'queries = ["What is the capital of China?", "Explain gravity"]',
        'documents = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies towards each other."]',
        "query_embeddings = model.encode_query(queries)",
        "document_embeddings = model.encode_document(documents)",
        "print(model.similarity(query_embeddings, document_embeddings))",
        "```",
        "",
    ]
    if facts.prompts:
        lines += [
            "`encode_query` and `encode_document` prepend the prompts stored with the model "
            "(`config_sentence_transformers.json`), exactly:",
            "",
            "| prompt name | text |",
            "| --- | --- |",
        ]
        lines += [f"| {cell(code(name))} | {cell(code(json.dumps(text)))} |" for name, text in facts.prompts.items()]
        lines += [
            "",
            "A query is the prompt followed directly by the text (no space after `Query:`); documents get no "
            "instruction. For another task pass your own, e.g. "
            f"`model.encode_query(texts, prompt={protocol.query_prompt('Given a question, retrieve answers')!r})`.",
            "",
        ]
    if facts.has_full_weights and facts.is_qwen3:
        instruction_prompt = query_prompt if query_prompt is not None else protocol.query_prompt(
            protocol.DEFAULT_RETRIEVAL_INSTRUCTION
        )
        lines += [
            "### Transformers",
            "",
            "Without sentence-transformers: plain text (no chat template), left padding, every sequence ending "
            f"with `{protocol.EOS_TOKEN}` (the tokenizer appends it), the hidden state of that last token, L2-normalised.",
            "",
            "```python",
            "import torch",
            "import torch.nn.functional as F",
            "from transformers import AutoModel, AutoTokenizer",
            "",
            f"tokenizer = AutoTokenizer.from_pretrained({model_ref!r}, padding_side='left')",
            f"model = AutoModel.from_pretrained({model_ref!r})",
            "",
            f"query_prompt = {json.dumps(instruction_prompt)}",
            'queries = [query_prompt + "What is the capital of China?"]',
            'documents = ["The capital of China is Beijing."]',
            f"batch = tokenizer(queries + documents, padding=True, truncation=True, max_length={facts.max_seq_length or protocol.DEFAULT_MAX_SEQ_LENGTH}, return_tensors='pt')",
            f"eos_id = tokenizer.convert_tokens_to_ids({protocol.EOS_TOKEN!r})",
            "assert (batch['input_ids'][:, -1] == eos_id).all(), 'every input must end with <|endoftext|>'",
            "with torch.no_grad():",
            "    hidden = model(**batch).last_hidden_state",
            "embeddings = F.normalize(hidden[:, -1], p=2, dim=1)  # left padding: the last position is the last token",
            "print(embeddings[:1] @ embeddings[1:].T)",
            "```",
            "",
        ]
    elif facts.adapter_base:
        lines += [
            f"This folder holds a LoRA adapter on {code(adapter_base)}; sentence-transformers applies it on load "
            "(with `peft` installed). For a standalone transformers checkpoint, export it with "
            "`st-qwen3emb export --merge_lora true`.",
            "",
        ]
    return lines


def _usage_reranker(model_ref: str) -> list[str]:
    return [
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import CrossEncoder",
        "",
        f"model = CrossEncoder({model_ref!r})",
        'query = "What is the capital of China?"',
        'documents = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies."]',
        "print(model.predict([(query, d) for d in documents]))",
        "```",
        "",
        "Each pair is rendered with the Qwen3-Reranker template saved with the model; the score is "
        "`sigmoid(z_yes - z_no)` at the last position. The default instruction is "
        f"`{protocol.RERANKER_DEFAULT_INSTRUCTION}`.",
        "",
    ]


def _training_section(run: RunInfo) -> list[str]:
    args = run.args
    lines = ["## Training", ""]
    sizes = [f"{args[k]:,} {label} rows" for k, label in (("train_rows", "training"), ("eval_rows", "evaluation"))
             if isinstance(args.get(k), int)]
    datasets = _as_list(args.get("dataset"))
    if datasets:
        lines.append("- **Training data:** " + ", ".join(code(d) for d in datasets))
    if args.get("val_dataset"):
        lines.append("- **Evaluation data:** " + ", ".join(code(d) for d in _as_list(args["val_dataset"])))
    if sizes:
        lines.append("- **Dataset size:** " + ", ".join(sizes))
    if args.get("loss_type"):
        lines.append(f"- **Loss:** {code(args['loss_type'])}")
        env = _env_settings(args)
        for key, value in env.items():
            lines.append(f"  - {code(key)} = {code(_flag_value(value))}")
        if _uses_infonce(args) and not env:
            lines.append("  - the `INFONCE_*` settings in effect were not recorded in args.json")
        if args.get("mrl_dims"):
            lines.append(f"  - Matryoshka dimensions (`mrl_dims`): {code(json.dumps(args['mrl_dims']))}")
    lines.append("")
    hyper = [k for k in (
        "train_type", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
        "learning_rate", "max_length", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "seed",
    ) if args.get(k) is not None and (not k.startswith("lora") and k != "target_modules" or args.get("train_type") == "lora")]
    if hyper:
        lines += ["| hyperparameter | value |", "| --- | --- |"]
        lines += [f"| {cell(code(k))} | {cell(code(_flag_value(args[k]).strip(chr(39))))} |" for k in hyper]
        lines.append("")
    lines += [
        "Reproduce with st-qwen3emb:",
        "",
        *code_block(build_command(args, "st-qwen3emb sft"), "bash"),
        "",
        "or with ms-swift (which has no query/document instruction; the equivalent flags only):",
        "",
        *code_block(build_command(args, "swift sft"), "bash"),
        "",
    ]
    if args.get("query_instruction"):
        lines += [
            "swift has no `--query_instruction`: it trains on the text as given, so the queries in its data would need "
            f"the prompt {code(repr(protocol.query_prompt(args['query_instruction'])))} written in front of them.",
            "",
        ]
    lines += _log_summary(run.log)
    if run.curves is not None:
        lines += ["![training curves](" + CURVES_FILENAME + ")", ""]
    return lines


def _log_summary(log: list[dict[str, Any]]) -> list[str]:
    train = [e for e in log if "loss" in e]
    evals = [e for e in log if any(k.startswith("eval_") for k in e)]
    if not train and not evals:
        return []
    lines = ["Training log (`logging.jsonl`):", ""]
    if train:
        last = train[-1]
        step = f" at step {code(last['global_step/max_steps'])}" if last.get("global_step/max_steps") else ""
        lines.append(f"- final training loss: {_fmt(float(last['loss']))}{step}")
        if last.get("elapsed_time"):
            lines.append(f"- elapsed time: {plain(last['elapsed_time'])}")
    if evals:
        last_eval = evals[-1]
        metrics = {k: v for k, v in last_eval.items() if k.startswith("eval_") and isinstance(v, (int, float))}
        step = f" (step {code(last_eval['global_step/max_steps'])})" if last_eval.get("global_step/max_steps") else ""
        lines.append(f"- last evaluation{step}: " + ", ".join(f"{code(k)} {_fmt(float(v))}" for k, v in metrics.items()))
    lines.append("")
    return lines


def _model_name(model_dir: Path, run: RunInfo | None, base: str | None) -> str:
    """The folder's name, except for a run's ``final`` / ``checkpoint-N`` folders, named after base and run.

    ``model_dir`` is where the folder ends up (training writes ``final/`` into a temporary folder first).
    """
    name = model_dir.resolve().name
    if run is None or not (name == FINAL_DIR or name.startswith("checkpoint-") or name == LAST_LINK):
        return name
    stem = f"{Path(base).name}-" if base else ""
    suffix = "" if name == FINAL_DIR else f"-{name}"
    return f"{stem}{run.run_dir.resolve().name}{suffix}"


def build_card(
    model_dir: Path,
    *,
    run: RunInfo | None,
    entries: list[EvalEntry],
    base_model: str | None,
    task_type: str,
    model_name: str | None = None,
    final_dir: Path | None = None,
    keep_paths: bool = False,
) -> Any:
    """The ``huggingface_hub.ModelCard`` for ``model_dir`` (not written).

    ``final_dir``: where ``model_dir`` will be moved once complete (names the card; default ``model_dir``).
    ``keep_paths``: publish local paths whole instead of only their final component.
    """
    from huggingface_hub import ModelCard, ModelCardData

    facts = read_model_facts(model_dir)
    final_dir = final_dir or model_dir
    args = run.args if run else {}
    reranker = task_type in RERANKER_TASK_TYPES
    base = base_model or args.get("model") or facts.adapter_base
    base_meta = _base_metadata(base)
    base_is_hub = bool(base) and is_hub_id(base)
    public = (lambda value: value) if keep_paths else _public_value
    shown_run = dataclasses.replace(run, args=public(args)) if run else None
    shown_entries = entries if keep_paths else [
        dataclasses.replace(e, model_name=public_path(e.model_name),
                            dataset={**e.dataset, "name": public_path(str(e.dataset["name"]))})
        for e in entries
    ]

    license_ = base_meta.get("license") or (QWEN3_LICENSE if facts.is_qwen3 else None)
    language = base_meta.get("language") or ("multilingual" if facts.is_qwen3 else None)
    tags = ["sentence-transformers", "st-qwen3emb"]
    tags += ["cross-encoder", "reranker", "text-ranking"] if reranker else ["sentence-similarity", "feature-extraction"]
    if facts.is_qwen3:
        tags.append("qwen3")
    if args.get("loss_type"):
        tags.append(f"loss:{args['loss_type']}")
    if args.get("train_type"):
        tags.append("lora" if args["train_type"] == "lora" else "full-finetune")
    if isinstance(args.get("train_rows"), int):
        tags.append(f"dataset_size:{args['train_rows']}")

    own = [e for e in shown_entries if _same_model(final_dir, e.model)]
    model_name = model_name or _model_name(final_dir, run, base)
    data = ModelCardData(
        base_model=base if base_is_hub else None,
        library_name="sentence-transformers",
        pipeline_tag="text-ranking" if reranker else "sentence-similarity",
        tags=tags,
        datasets=_hub_datasets(_as_list(args.get("dataset"))) or None,
        license=license_,
        language=language,
        model_name=model_name if own else None,  # only model-index uses it; alone it is not Hub metadata
        eval_results=eval_results(own) or None,
    )

    kind = "reranker" if reranker else "embedding model"
    # a Hub id is only letters, digits, '-', '_', '.', '/', so the link cannot be bent; anything else is shown as code
    base_text = (f"[{base}](https://huggingface.co/{base})" if base_is_hub else code(public(base))) if base else None
    trained = "fine-tuned" if run else "exported"
    intro = f"A Qwen3 {kind}" if facts.is_qwen3 else f"A sentence-transformers {kind}"
    intro += f" {trained} from {base_text}" if base_text else ""
    intro += " with st-qwen3emb on the sentence-transformers stack." if run else "."
    body = [f"# {plain(model_name)}", "", intro, ""]
    details = []
    if not reranker:
        if facts.dimension:
            details.append(f"- **Output dimension:** {plain(facts.dimension)}")
        if facts.pooling_mode:
            details.append(f"- **Pooling:** {plain(facts.pooling_mode)}" + (", L2-normalised" if facts.is_qwen3 else ""))
        if facts.similarity:
            details.append(f"- **Similarity:** {plain(facts.similarity)}")
    if facts.max_seq_length:
        details.append(f"- **Maximum sequence length:** {plain(facts.max_seq_length)} tokens")
    if license_:
        details.append(f"- **License:** {plain(license_)}")
    body += (["## Model details", "", *details, ""] if details else [])

    model_ref = model_name
    adapter_base = public(facts.adapter_base) if facts.adapter_base else None
    body += _usage_reranker(model_ref) if reranker else _usage_embedding(facts, model_ref, adapter_base)
    if shown_run:
        body += _training_section(shown_run)

    body += ["## Evaluation", ""]
    if entries:
        sources = sorted({str(e.source.name) for e in entries})
        body += [
            evaluation_table(shown_entries, final_dir, base),
            "",
            "Scores from the evaluation summaries " + ", ".join(code(s) for s in sources) + ".",
            "",
        ]
    else:
        body += ["Not evaluated: no evaluation summary was given (`st-qwen3emb card --eval results.json`).", ""]

    body += ["## Framework versions", ""]
    body += [f"- {plain(name)}: {plain(version)}" for name, version in _versions(facts, run).items()]
    body += ["", "## Citation", "", "```bibtex", QWEN3_EMBEDDING_BIBTEX, "", SENTENCE_TRANSFORMERS_BIBTEX, "```", ""]
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}", body="\n".join(body))


def _folder_task_type(model_dir: Path) -> str:
    st_config = read_json(model_dir / "config_sentence_transformers.json") or {}
    return "reranker" if st_config.get("model_type") == "CrossEncoder" else "embedding"


def write_model_card(
    model_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    eval_files: Sequence[str | Path] = (),
    base_model: str | None = None,
    task_type: str | None = None,
    model_name: str | None = None,
    final_dir: str | Path | None = None,
    keep_paths: bool = False,
) -> Path:
    """Write ``model_dir/README.md`` (and copy the run's ``training_curves.png`` beside it); return the card's path.

    Args:
        model_dir: an exported or saved sentence-transformers folder.
        run_dir: the training run (holding ``args.json``/``logging.jsonl``); found automatically when ``model_dir``
            is ``<run>/final`` or ``<run>/checkpoint-N``.
        eval_files: evaluation summaries (``st-qwen3emb-eval/1``); all their models become columns of the table,
            and the results of this model go into the Hub ``model-index``.
        base_model: the base model's Hub id or path (default: ``model`` in args.json, or the adapter's base).
        task_type: ``embedding``, or ``reranker`` / ``generative_reranker``; default: the run's ``task_type``, else
            ``reranker`` for a CrossEncoder folder, else ``embedding``.
        model_name: the card's title and model-index name; default: the folder's name (for ``<run>/final``: base
            model and run). An export that writes into a temporary folder passes the final folder's name.
        final_dir: where ``model_dir`` is moved once complete (training writes ``<run>/final`` into a temporary
            folder): the card is named after it, never after the temporary folder.
        keep_paths: publish local paths (model, data, output folder) whole; by default only their final component
            appears in the card.

    User-supplied text is escaped (``st_qwen3emb.card_markdown``) and secrets are redacted
    (``st_qwen3emb.redaction``) before anything is written.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CardInputError(f"{model_dir}: no such model folder")
    if (model_dir / CARD_FILENAME).exists() and not is_replaceable_card(model_dir / CARD_FILENAME):
        readme = shlex.quote(str(model_dir / CARD_FILENAME))
        raise CardInputError(
            f"{model_dir / CARD_FILENAME} was not written by st-qwen3emb or sentence-transformers, so it is left as it "
            f"is; move it aside (e.g. mv {readme} {readme}.orig) and run the command again"
        )
    final = Path(final_dir) if final_dir is not None else model_dir
    run_path = Path(run_dir) if run_dir is not None else find_run_dir(final)
    run = read_run(run_path) if run_path is not None else None
    entries = [entry for path in eval_files for entry in read_eval_summary(Path(path))]
    if task_type is None:
        task_type = str((run.args.get("task_type") if run else None) or _folder_task_type(model_dir))
    card = build_card(
        model_dir, run=run, entries=entries, base_model=base_model, task_type=task_type, model_name=model_name,
        final_dir=final, keep_paths=keep_paths,
    )

    target = model_dir / CARD_FILENAME
    tmp = model_dir / f".{CARD_FILENAME}.tmp"
    tmp.write_text(redact_text(str(card)), encoding="utf-8")
    os.replace(tmp, target)  # atomic: a failure leaves the previous card, never half of one
    if run is not None and run.curves is not None and run.curves.resolve() != (model_dir / CURVES_FILENAME).resolve():
        shutil.copyfile(run.curves, model_dir / CURVES_FILENAME)
    return target
