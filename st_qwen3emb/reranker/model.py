"""Load a Qwen3-Reranker (a causal LM) as a sentence-transformers ``CrossEncoder`` that scores like upstream.

sentence-transformers 6 already loads a ``*ForCausalLM`` checkpoint as a CrossEncoder made of its own
modules: a ``Transformer`` (task ``text-generation``, left padding, only the last position's logits) and a
``LogitScore`` head that returns ``logit[yes] - logit[no]`` (``predict`` applies a sigmoid, which equals
upstream's softmax over the no/yes logits). What it lacks is the Qwen3 reranker template; without it the
scores are close to random. sentence-transformers turns a ``(query, document)`` pair into the chat
messages ``query``/``document`` and a ``prompt`` into a ``system`` message, then renders them with the
tokenizer's chat template. So the template from ``protocol.reranker_chat_template`` is installed as the
tokenizer's chat template: it is saved as ``chat_template.jinja``, and a saved folder scores identically in
plain ``CrossEncoder(folder)`` with no ``trust_remote_code`` and no import of this package.

The instruction is chosen per call (``model.predict(pairs, prompt="...")``), per dataset in training
(``CrossEncoderTrainingArguments(prompts={"dataset": "..."})``), or model-wide (``instruction=`` here,
stored in the Transformer module's ``processing_kwargs`` and so saved too); otherwise the upstream default.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb import protocol
from st_qwen3emb.model import (
    QWEN3_MODEL_TYPES,
    ModelLoadError,
    check_module_classes,
    instantiate,
    require_hub_model,
    resolve_local_folder,
    transformers_kwargs,
)

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)

MODEL_TYPE_RERANKER = "qwen3_reranker"  # swift's --model_type for Qwen3 rerankers


def yes_no_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The vocabulary ids of the reranker's ``yes`` and ``no`` answer tokens."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in (protocol.RERANKER_YES_TOKEN, protocol.RERANKER_NO_TOKEN)]
    unk = getattr(tokenizer, "unk_token_id", None)
    if any(i is None or i == unk for i in ids):
        raise ModelLoadError("the tokenizer has no single 'yes'/'no' tokens, so it cannot be a Qwen3 reranker")
    return ids[0], ids[1]


def _message_entry(transformer: Any) -> dict[str, Any]:
    text = transformer.modality_config.get("text") or {"method": "forward", "method_output_name": "logits"}
    return {**text, "format": "flat"}


def apply_reranker_protocol(
    model: CrossEncoder, *, instruction: str | None = None, max_length: int | None = None
) -> CrossEncoder:
    """Bring a loaded Qwen3 causal-LM or sequence-classification CrossEncoder in line with upstream (in place).

    Installs the reranker chat template, routes pairs through it (the ``message`` modality), keeps left
    padding, stores ``instruction`` as the model-wide default, and caps the length at
    ``protocol.RERANKER_MAX_LENGTH`` (upstream's) unless ``max_length`` says otherwise.
    """
    from sentence_transformers.cross_encoder.modules import LogitScore

    transformer = model[0]
    tokenizer = transformer.tokenizer
    if tokenizer is None:
        raise ModelLoadError("this CrossEncoder has no tokenizer; a Qwen3 reranker needs one")
    logit_score = next((m for m in model if isinstance(m, LogitScore)), None)
    if logit_score is not None:
        yes_id, no_id = yes_no_token_ids(tokenizer)
        if (logit_score.true_token_id, logit_score.false_token_id) != (yes_id, no_id):
            raise ModelLoadError(
                f"this reranker scores tokens {logit_score.true_token_id}/{logit_score.false_token_id}, but the "
                f"Qwen3 protocol scores 'yes'/'no' ({yes_id}/{no_id})"
            )
    tokenizer.chat_template = protocol.reranker_chat_template()
    tokenizer.padding_side = protocol.PADDING_SIDE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = protocol.EOS_TOKEN
    # Pairs must become query/document messages so the template renders them; plain-text pair
    # tokenisation would concatenate the two texts with no template at all.
    transformer.modality_config["message"] = _message_entry(transformer)
    transformer.input_formatter.message_format = "flat"
    transformer.input_formatter.supported_modalities = list(transformer.modality_config)

    if instruction is not None:
        if not instruction.strip():
            raise ModelLoadError("an instruction must be a non-empty string")
        chat = dict(transformer.processing_kwargs.get("chat_template", {}))
        chat["instruction"] = instruction
        transformer.processing_kwargs = {**transformer.processing_kwargs, "chat_template": chat}

    if max_length is not None:
        model.max_seq_length = max_length
    elif model.max_seq_length is None or model.max_seq_length > protocol.RERANKER_MAX_LENGTH:
        model.max_seq_length = protocol.RERANKER_MAX_LENGTH
    return model


def model_instruction(model: CrossEncoder) -> str:
    """The instruction a reranker uses when a call gives none."""
    chat = model[0].processing_kwargs.get("chat_template", {})
    return chat.get("instruction") or protocol.RERANKER_DEFAULT_INSTRUCTION


def _read_architectures(name_or_path: str, revision: str | None, trust_remote_code: bool) -> tuple[str | None, list]:
    from transformers import AutoConfig

    folder = resolve_local_folder(name_or_path)
    source = name_or_path
    if folder is not None:
        if not (folder / "config.json").is_file() and (folder / "adapter_config.json").is_file():
            import json

            base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if not base:
                raise ModelLoadError(f"{folder}/adapter_config.json names no base model")
            source = base
        else:
            source = str(folder)
    if resolve_local_folder(source) is None:
        require_hub_model(source, revision=revision)
    try:
        config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        hint = "" if folder is not None else " If you are offline, pass a local folder instead."
        raise ModelLoadError(f"could not read the model config of {name_or_path!r} ({err}).{hint}") from err
    return getattr(config, "model_type", None), list(getattr(config, "architectures", None) or [])


def load_reranker(
    name_or_path: str | Path,
    *,
    device: str | None = None,
    instruction: str | None = None,
    max_length: int | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    model_type: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> CrossEncoder:
    """Load a Qwen3 reranker as a ``CrossEncoder`` that scores exactly like the official recipe.

    Args:
        name_or_path: a Qwen3-Reranker Hub id, a bare ``Qwen3ForCausalLM`` checkpoint, a saved CrossEncoder
            folder (including one exported here, or a LoRA checkpoint), or a ``Qwen3ForSequenceClassification``
            conversion (``st_qwen3emb.reranker.export.export_reranker(format="seq-cls")``).
        instruction: the model-wide task instruction (saved with the model); per call pass ``prompt=``.
        max_length: truncation length in tokens (template included); default upstream's 8192.
        device, dtype, attn_implementation, revision, trust_remote_code: as in sentence-transformers.
        model_type: ``"qwen3_reranker"`` (swift's name) or None.

    ``predict`` returns ``sigmoid(z_yes - z_no)``; ``predict(..., activation_fn=torch.nn.Identity())`` the
    raw ``z_yes - z_no``.
    """
    from sentence_transformers import CrossEncoder

    name_or_path = str(name_or_path)
    if model_type not in (None, MODEL_TYPE_RERANKER):
        raise ModelLoadError(f"unknown reranker model_type {model_type!r}; expected {MODEL_TYPE_RERANKER!r} or none")
    folder = resolve_local_folder(name_or_path)
    if folder is not None:
        check_module_classes(folder, trust_remote_code=trust_remote_code)
    detected, architectures = _read_architectures(name_or_path, revision, trust_remote_code)
    if detected not in QWEN3_MODEL_TYPES:
        raise ModelLoadError(
            f"{name_or_path!r} is not a Qwen3 model (model_type {detected!r}); load other rerankers with "
            "sentence_transformers.CrossEncoder"
        )
    if architectures and not architectures[0].endswith(("ForCausalLM", "ForSequenceClassification")):
        raise ModelLoadError(
            f"{name_or_path!r} is a {architectures[0]}; a Qwen3 reranker is a Qwen3ForCausalLM (or its "
            "Qwen3ForSequenceClassification conversion)"
        )
    model = instantiate(
        CrossEncoder, name_or_path, folder, device=device, revision=revision,
        trust_remote_code=trust_remote_code, model_kwargs=transformers_kwargs(dtype, attn_implementation),
    )
    return apply_reranker_protocol(model, instruction=instruction, max_length=max_length)
