"""``st-qwen3emb export``: turn a training checkpoint into a plain sentence-transformers folder.

swift's ``swift export --adapters CKPT --merge_lora true --output_dir DIR`` copies the upstream
sentence-transformers files next to the merged weights unchanged. Here the checkpoint is loaded the way an
app would load it, the adapter is checked key by key against the file (a mismatch would silently give the
base model), merged, the Qwen3 protocol re-applied, and the written folder is reloaded and compared with the
adapter model before it is moved into place: the export either reproduces the checkpoint's embeddings or
does not appear at all.

Formats: ``portable`` is what sentence-transformers 6 writes; ``legacy`` is the pre-5.4 layout
(``sentence_transformers.models.*`` module types, ``pooling_mode_lasttoken``-style pooling config,
``sentence_bert_config.json`` with ``max_seq_length``) that older sentence-transformers and converters read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from st_qwen3emb import commands, lora
from st_qwen3emb.config import EMBEDDING_TASK_TYPES, TASK_TYPES, task_entry_point
from st_qwen3emb.export_steps import (
    ExportError,
    assert_same,
    build_in_place,
    default_output_dir,
    mark_as_export,
    output_folder,
    resolve_base_model,
    run_args,
    stage_checkpoint,
    tolerance,
)
from st_qwen3emb.runs import find_run_dir
from st_qwen3emb.saved_config import keep_base_config, read_base_config

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

FORMATS = ("portable", "legacy")
# Texts the adapter model and the export must embed identically (queries get the model's query prompt).
PROBE_TEXTS = (
    "What is the capital of China?",
    "Gravity is a force that attracts two bodies towards each other.",
    "a",
)


# --- pieces ---------------------------------------------------------------------------------------
def _load_adapter_model(staged: Path, trust_remote_code: bool) -> SentenceTransformer:
    """Load the staged adapter checkpoint and prove every saved adapter tensor landed in the model.

    An adapter trained on a wrapper (``*ForCausalLM``: keys ``model.layers...``) does not fit the bare
    model sentence-transformers loads (``layers...``); transformers then leaves the LoRA layers at their
    initial values, so the merge would give the base model. Such keys are re-keyed once and reloaded.
    """
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(staged), trust_remote_code=trust_remote_code, device="cpu")
    saved = lora.read_adapter_weights(staged)
    bad = lora.adapter_mismatch(model, saved)
    if bad:
        renamed = lora.strip_module_prefix(saved, set(lora.loaded_adapter_weights(model)))
        if renamed is not None:
            logger.warning("The adapter's keys name a wrapper module (%s); re-keyed for the bare model.", bad[0])
            for name in lora.ADAPTER_WEIGHTS:
                (staged / name).unlink(missing_ok=True)
            save_file({k: v.contiguous() for k, v in renamed.items()}, str(staged / lora.ADAPTER_WEIGHTS[0]))
            model = SentenceTransformer(str(staged), trust_remote_code=trust_remote_code, device="cpu")
            bad = lora.adapter_mismatch(model, renamed)
    if bad or not lora.has_lora(model):
        raise ExportError(
            f"the adapter in the checkpoint does not match the model's module tree: {len(bad)} of {len(saved)} "
            f"saved tensors (e.g. {bad[:3]}) have no matching LoRA layer in {type(model[0].model).__name__}. "
            "Merging would give the base model, so nothing was exported."
        )
    return model


def _load_full_model(checkpoint: Path, trust_remote_code: bool) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.model import load_model

    if (checkpoint / "modules.json").is_file():
        return SentenceTransformer(str(checkpoint), trust_remote_code=trust_remote_code, device="cpu")
    return load_model(str(checkpoint), trust_remote_code=trust_remote_code, device="cpu")


def probe_embeddings(model: SentenceTransformer) -> np.ndarray:
    """Query-side and document-side embeddings of ``PROBE_TEXTS`` (both prompts exercised)."""
    import numpy as np

    texts = list(PROBE_TEXTS)
    return np.concatenate([model.encode_query(texts), model.encode_document(texts)])


# --- the legacy layout ----------------------------------------------------------------------------
# pre-5.4 sentence-transformers names: module classes and one boolean per pooling mode.
LEGACY_MODULE_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
}
LEGACY_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def write_legacy_layout(folder: Path, model: SentenceTransformer) -> None:
    """Rewrite a freshly saved folder's sentence-transformers files in the pre-5.4 layout (weights untouched)."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    for entry, module in zip(modules, model, strict=True):
        kind = type(module).__name__
        if kind not in LEGACY_MODULE_TYPES:
            raise ExportError(f"the legacy format covers {sorted(LEGACY_MODULE_TYPES)}; this model has a {kind} module")
        entry["type"] = LEGACY_MODULE_TYPES[kind]
        path = folder / entry["path"]
        if kind == "Transformer":
            (path / "sentence_bert_config.json").write_text(
                json.dumps({"max_seq_length": model.max_seq_length, "do_lower_case": False}, indent=2), encoding="utf-8"
            )
        elif kind == "Pooling":
            modes = module.pooling_mode if isinstance(module.pooling_mode, (list, tuple)) else (module.pooling_mode,)
            config = {"word_embedding_dimension": module.get_embedding_dimension()}
            config.update({key: mode in modes for mode, key in LEGACY_POOLING_KEYS.items()})
            config["include_prompt"] = module.include_prompt
            (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        elif kind == "Normalize":
            (path / "config.json").unlink(missing_ok=True)  # older Normalize has no configuration
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    _legacy_tokenizer_config(folder / modules[0]["path"] / "tokenizer_config.json")
    _legacy_transformers_config(folder / modules[0]["path"] / "config.json")


def _legacy_tokenizer_config(path: Path) -> None:
    """transformers 4 reads ``extra_special_tokens`` as a dict; transformers 5 saves a list of extra tokens."""
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    extra = config.get("extra_special_tokens")
    if isinstance(extra, list):
        config.pop("extra_special_tokens")
        config["additional_special_tokens"] = extra
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def _legacy_transformers_config(path: Path) -> None:
    """Add the transformers 4 spellings of keys transformers 5 renamed (kept alongside the new ones).

    transformers 4 reads ``rope_theta``/``rope_scaling`` at the top level and ignores ``rope_parameters``;
    without them it falls back to a rope base of 10000 and every embedding changes.
    """
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        config.setdefault("rope_theta", rope["rope_theta"])
        if rope.get("rope_type", "default") != "default":
            config.setdefault("rope_scaling", {k: v for k, v in rope.items() if k != "rope_theta"})
    if "dtype" in config:
        config.setdefault("torch_dtype", config["dtype"])
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


# --- the export -----------------------------------------------------------------------------------
def _write_card(folder: Path, checkpoint: Path, base_model: str | None, name: str) -> None:
    from st_qwen3emb.model_card import write_model_card

    write_model_card(folder, run_dir=find_run_dir(checkpoint.resolve()), base_model=base_model, model_name=name)


def export(
    checkpoint: str | Path,
    output_dir: str | Path | None = None,
    *,
    merge_lora: bool | None = None,
    base_model: str | None = None,
    format: str = "portable",
    exist_ok: bool = False,
    safe_serialization: bool = True,
    task_type: str = "embedding",
    trust_remote_code: bool = False,
) -> Path:
    """Export ``checkpoint`` as a plain sentence-transformers folder and return its path.

    Args:
        checkpoint: a LoRA checkpoint (adapter + sentence-transformers files) or a full model folder.
        output_dir: where to write; default ``<checkpoint>-merged`` (LoRA) or ``<checkpoint>-export``.
        merge_lora: merge the adapter into the base weights; default: whenever the checkpoint is an adapter.
        base_model: the adapter's base model, when the one recorded in the checkpoint is not reachable.
        format: ``portable`` (sentence-transformers 6 layout) or ``legacy`` (pre-5.4 layout).
        exist_ok: replace an existing output folder (only once the new export is complete), if it is an earlier
            export or empty (``st_qwen3emb.safe_replace``); anything else is refused.
        safe_serialization: safetensors weights (default) instead of pickle.
        task_type: ``embedding``; the reranker types go to ``st_qwen3emb.reranker.export.export_reranker``.
        trust_remote_code: as in transformers; off unless asked for.
    """
    if task_type in TASK_TYPES and task_type not in EMBEDDING_TASK_TYPES:
        return task_entry_point(task_type, "export")(
            checkpoint, output_dir, merge_lora=merge_lora, base_model=base_model, format=format,
            exist_ok=exist_ok, safe_serialization=safe_serialization, task_type=task_type,
        )
    if task_type not in EMBEDDING_TASK_TYPES:
        raise ExportError(f"unknown task_type {task_type!r}; expected one of {TASK_TYPES}")
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r} for embedding models; expected one of {FORMATS}")

    checkpoint = Path(os.path.expanduser(str(checkpoint)))
    if not checkpoint.is_dir():
        raise ExportError(f"no checkpoint at {str(checkpoint)!r}: that folder does not exist")
    from st_qwen3emb.model import ModelLoadError, check_module_classes

    try:
        check_module_classes(checkpoint, trust_remote_code=trust_remote_code)
    except ModelLoadError as err:
        raise ExportError(str(err)) from None
    is_adapter = lora.is_adapter_checkpoint(checkpoint)
    merge = is_adapter if merge_lora is None else merge_lora
    if merge and not is_adapter:
        raise ExportError(
            f"{checkpoint} is not a LoRA adapter checkpoint (no {lora.ADAPTER_CONFIG}), so there is nothing to merge. "
            "For a full fine-tuning checkpoint run: "
            + commands.export_full_model(checkpoint, Path(output_dir) if output_dir else default_output_dir(checkpoint, False))
        )
    if is_adapter and not merge:
        raise ExportError(
            f"{checkpoint} is a LoRA adapter checkpoint; a plain sentence-transformers folder needs the adapter "
            "merged: pass --merge_lora true"
        )
    output = output_folder(checkpoint, output_dir, merge=merge, exist_ok=exist_ok)
    base = resolve_base_model(checkpoint, base_model) if is_adapter else run_args(checkpoint).get("model")
    build_in_place(
        output,
        lambda built, scratch: _build(checkpoint, built, scratch, name=output.name, base=base, merge=merge,
                                      format=format, safe_serialization=safe_serialization,
                                      trust_remote_code=trust_remote_code),
        exist_ok=exist_ok,
    )
    logger.info("Exported %s to %s", checkpoint, output)
    return output


def _build(
    checkpoint: Path, built: Path, scratch: Path, *, name: str, base: str | None, merge: bool, format: str,
    safe_serialization: bool, trust_remote_code: bool,
) -> None:
    """Load, merge, save and verify into ``built`` (inside the scratch folder)."""
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.model import apply_qwen3_protocol, is_qwen3_model

    if merge:
        staged = scratch / "checkpoint"
        stage_checkpoint(checkpoint, staged, base)
        model = _load_adapter_model(staged, trust_remote_code)
    else:
        model = _load_full_model(checkpoint, trust_remote_code)
    model.eval()
    if is_qwen3_model(model):
        apply_qwen3_protocol(model, max_seq_length=model.max_seq_length)
    tol = tolerance(model)
    reference = probe_embeddings(model)
    if merge:
        lora.merge_lora(model)
        assert_same(reference, probe_embeddings(model), tol, "merging the adapter")

    model.save(str(built), safe_serialization=safe_serialization)
    keep_base_config(built, read_base_config(base if merge else checkpoint))
    leftovers = [p.name for p in built.rglob("adapter_*")]
    if leftovers:
        raise ExportError(f"the export still holds adapter files {leftovers}")
    if format == "legacy":
        write_legacy_layout(built, model)
    _write_card(built, checkpoint, base, name)
    mark_as_export(built)
    reloaded = SentenceTransformer(str(built), device="cpu", trust_remote_code=trust_remote_code)
    assert_same(reference, probe_embeddings(reloaded), tol, "saving and reloading the export")
