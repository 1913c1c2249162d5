"""Export a Qwen3 reranker checkpoint: merged LoRA as a plain CrossEncoder folder, or the seq-cls conversion.

``portable``: the checkpoint (full, or a LoRA adapter merged into its base) saved as a sentence-transformers
CrossEncoder folder: ``Qwen3ForCausalLM`` weights, the ``LogitScore`` yes/no head, the reranker chat template.
It loads with plain ``CrossEncoder(folder)`` and scores identically.

``seq-cls``: the single-logit ``Qwen3ForSequenceClassification`` conversion that vLLM and
text-embeddings-inference serve. The score head's one weight row is ``lm_head[yes] - lm_head[no]``, so the
logit at the last token is ``h . (w_yes - w_no) = z_yes - z_no``, the same score. The folder is also a
CrossEncoder (sequence-classification task, same chat template), so it scores identically in
sentence-transformers too; servers that do not read chat templates need the input formatted with
``st_qwen3emb.protocol.format_reranker_pair``.

Either way the export is built in a temporary folder next to the target, reloaded and compared with the
checkpoint's scores on probe pairs, and only then renamed into place: it reproduces the checkpoint or does
not appear at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from st_qwen3emb import lora
from st_qwen3emb.config import RERANKER_TASK_TYPES
from st_qwen3emb.export_steps import (
    ExportError,
    assert_same,
    build_in_place,
    mark_as_export,
    output_folder,
    resolve_base_model,
    stage_checkpoint,
    tolerance,
)
from st_qwen3emb.runs import find_run_dir
from st_qwen3emb.saved_config import keep_base_config, read_base_config

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)

RERANKER_FORMATS = ("portable", "seq-cls")
PROBE_PAIRS = (
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("What is the capital of China?", "Gravity is a force that attracts two bodies towards each other."),
    ("Explain gravity", "ok"),
)


def probe_scores(model: CrossEncoder) -> np.ndarray:
    """The raw scores ``z_yes - z_no`` of ``PROBE_PAIRS``."""
    import torch

    return model.predict(list(PROBE_PAIRS), activation_fn=torch.nn.Identity())


def _load_checkpoint(checkpoint: Path, staged: Path | None) -> CrossEncoder:
    """The checkpoint as a CrossEncoder; for an adapter, prove every saved LoRA tensor landed in the model."""
    from st_qwen3emb.reranker.model import load_reranker

    if staged is None:
        return load_reranker(str(checkpoint), device="cpu")
    model = load_reranker(str(staged), device="cpu")
    saved = lora.read_adapter_weights(staged)
    bad = lora.adapter_mismatch(model, saved)
    if bad or not lora.has_lora(model):
        raise ExportError(
            f"the adapter in {checkpoint} does not match the reranker's module tree ({len(bad)} of {len(saved)} saved "
            f"tensors, e.g. {bad[:3]}, have no LoRA layer); merging would give the base model, so nothing was exported"
        )
    return model


def to_sequence_classification(model: CrossEncoder):
    """A ``Qwen3ForSequenceClassification`` whose single logit equals the CrossEncoder's ``z_yes - z_no``."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    from st_qwen3emb.reranker.model import yes_no_token_ids

    causal = model[0].model
    if not hasattr(causal, "get_output_embeddings") or causal.get_output_embeddings() is None:
        raise ExportError(f"the reranker's model ({type(causal).__name__}) has no LM head to convert")
    tokenizer = model.tokenizer
    yes_id, no_id = yes_no_token_ids(tokenizer)
    config = copy.deepcopy(causal.config)
    config.architectures = [type(causal).__name__.replace("ForCausalLM", "ForSequenceClassification")]
    config.num_labels = 1
    config.id2label, config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
    config.pad_token_id = tokenizer.pad_token_id
    config.tie_word_embeddings = False  # the score head is its own weight, not the embedding matrix
    dtype = next(causal.parameters()).dtype
    seq = AutoModelForSequenceClassification.from_config(config, dtype=dtype)
    missing, unexpected = seq.base_model.load_state_dict(causal.base_model.state_dict(), strict=False)
    if missing or unexpected:
        raise ExportError(f"the causal LM's body does not fit the classifier: missing {missing[:3]}, extra {unexpected[:3]}")
    head = causal.get_output_embeddings().weight.detach()
    with torch.no_grad():
        row = head[yes_id].float() - head[no_id].float()
        seq.score.weight.copy_(row.unsqueeze(0).to(seq.score.weight.dtype))
    return seq


def _build(checkpoint: Path, built: Path, scratch: Path, *, base: str | None, merge: bool, format: str,
           safe_serialization: bool, name: str | None = None) -> None:
    from st_qwen3emb.reranker.model import apply_reranker_protocol, load_reranker, model_instruction

    staged = None
    if merge:
        staged = scratch / "checkpoint"
        stage_checkpoint(checkpoint, staged, base)
    model = _load_checkpoint(checkpoint, staged)
    model.eval()
    tol = tolerance(model, float32=1e-4, half=5e-2)
    reference = probe_scores(model)
    if merge:
        lora.merge_lora(model)
        assert_same(reference, probe_scores(model), tol, "merging the adapter", "the reranker scores")

    if format == "seq-cls":
        hf_dir = scratch / "seq-cls"
        to_sequence_classification(model).save_pretrained(str(hf_dir), safe_serialization=safe_serialization)
        model.tokenizer.save_pretrained(str(hf_dir))
        converted = load_reranker(str(hf_dir), device="cpu")
        apply_reranker_protocol(converted, instruction=model_instruction(model), max_length=model.max_seq_length)
        converted.save(str(built), safe_serialization=safe_serialization)
    else:
        model.save(str(built), safe_serialization=safe_serialization)
        keep_base_config(built, read_base_config(base if merge else checkpoint))  # seq-cls: a new architecture
    leftovers = [p.name for p in built.rglob("adapter_*")]
    if leftovers:
        raise ExportError(f"the export still holds adapter files {leftovers}")
    _write_card(built, checkpoint, base, name)
    mark_as_export(built)
    reloaded = load_reranker(str(built), device="cpu")
    assert_same(reference, probe_scores(reloaded), tol, "saving and reloading the export", "the reranker scores")


def _write_card(folder: Path, checkpoint: Path, base_model: str | None, name: str | None) -> None:
    """The card of the scratch ``folder``, named after the output folder (``name``), not the scratch one."""
    try:
        from st_qwen3emb.model_card import write_model_card
    except ModuleNotFoundError as err:
        if err.name != "st_qwen3emb.model_card":
            raise
        return
    write_model_card(folder, run_dir=find_run_dir(checkpoint), base_model=base_model, task_type="generative_reranker",
                     model_name=name)


def export_reranker(
    checkpoint: str | Path,
    output_dir: str | Path | None = None,
    *,
    format: str = "portable",
    merge_lora: bool | None = None,
    base_model: str | None = None,
    exist_ok: bool = False,
    safe_serialization: bool = True,
    task_type: str = "generative_reranker",
) -> Path:
    """Export a reranker checkpoint (full or LoRA) as a plain CrossEncoder folder; return the folder.

    Args:
        checkpoint: a training checkpoint (LoRA adapter + sentence-transformers files, or full weights), a
            saved CrossEncoder folder or a bare Qwen3-Reranker checkpoint.
        output_dir: default ``<checkpoint>-merged`` (LoRA) or ``<checkpoint>-export``.
        format: ``portable`` (causal LM + yes/no head) or ``seq-cls`` (``Qwen3ForSequenceClassification``).
        merge_lora: merge the adapter; default whenever the checkpoint is an adapter (an unmerged adapter
            cannot be converted, so False on an adapter is an error).
        base_model: the adapter's base, when the one recorded in the checkpoint is not reachable.
        exist_ok: replace an existing output folder (only once the new export is complete and verified), if it is
            an earlier export or empty (``st_qwen3emb.safe_replace``); anything else is refused.
    """
    if format not in RERANKER_FORMATS:
        raise ExportError(f"unknown format {format!r} for rerankers; expected one of {RERANKER_FORMATS}")
    if task_type not in RERANKER_TASK_TYPES:
        raise ExportError(f"export_reranker exports rerankers, not task_type {task_type!r}")
    checkpoint = Path(os.path.expanduser(str(checkpoint)))
    if not checkpoint.is_dir():
        raise ExportError(f"no checkpoint at {str(checkpoint)!r}: that folder does not exist")
    is_adapter = lora.is_adapter_checkpoint(checkpoint)
    merge = is_adapter if merge_lora is None else bool(merge_lora)
    if merge and not is_adapter:
        raise ExportError(f"{checkpoint} holds no LoRA adapter (no {lora.ADAPTER_CONFIG}); nothing to merge")
    if is_adapter and not merge:
        raise ExportError("a reranker export holds full weights; an adapter checkpoint needs merge_lora=True")
    output = output_folder(checkpoint, output_dir, merge=merge, exist_ok=exist_ok)
    base = resolve_base_model(checkpoint, base_model) if is_adapter else None
    build_in_place(
        output,
        lambda built, scratch: _build(checkpoint, built, scratch, base=base, merge=merge, format=format,
                                      safe_serialization=safe_serialization, name=output.name),
        exist_ok=exist_ok,
    )
    logger.info("Exported %s (%s) to %s", checkpoint, format, output)
    return output
