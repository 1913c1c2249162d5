"""Load any Qwen3 embedding checkpoint as a sentence-transformers model that follows the official protocol.

``load_model`` accepts a published Qwen3-Embedding sentence-transformers folder or Hub id, a bare Qwen3
checkpoint (``Qwen3ForCausalLM`` or ``Qwen3Model`` weights with no sentence-transformers files), or any
other sentence-transformers model (passed through unchanged). For Qwen3 it guarantees, in a form that is
saved with the model so a plain ``SentenceTransformer(folder)`` behaves the same:

- every sequence ends with ``<|endoftext|>``, also after truncation (the tokenizer's post-processor
  appends it; tokenizers that do not are fixed);
- left padding, last-token pooling, L2 normalisation, cosine similarity;
- the official query/document prompts plus task-type prompts for mteb (see ``protocol.py``);
- a training-sane ``max_seq_length`` instead of 32k.

The saved model is built from sentence-transformers' own modules only (Transformer, Pooling, Normalize),
so no ``trust_remote_code`` and no import of this package is needed to load it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb import protocol

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

QWEN3_MODEL_TYPES = ("qwen3",)
MODEL_TYPE_EMBEDDING = "qwen3_emb"  # swift's --model_type for Qwen3 embedding models
_ST_MARKER = "modules.json"


class ModelLoadError(ValueError):
    """A model path or option that cannot be turned into a model; the message says why and what to do."""


# --- locating and inspecting ----------------------------------------------------------------------
def _looks_like_local_path(name: str) -> bool:
    # A Hub id is "name" or "org/name"; anything else the user typed is meant as a path.
    return (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or "\\" in name
        or name.endswith("/")
        or os.path.splitext(name)[1] in (".json", ".safetensors", ".bin")
    )


def resolve_local_folder(name_or_path: str) -> Path | None:
    """The local folder for ``name_or_path``, ``None`` for a Hub id; clear errors for bad local paths."""
    path = Path(os.path.expanduser(str(name_or_path)))
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{name_or_path!r} is a file; a model is a folder (with config.json or modules.json)")
        if not (path / _ST_MARKER).is_file() and not (path / "config.json").is_file():
            if (path / "adapter_config.json").is_file():
                return path  # a LoRA checkpoint: sentence-transformers applies the adapter itself
            raise ModelLoadError(
                f"{str(path)!r} is not a model folder: it has neither modules.json (sentence-transformers) "
                "nor config.json (transformers)"
            )
        return path
    if _looks_like_local_path(str(name_or_path)):
        raise ModelLoadError(f"no model at {str(path)!r}: that path does not exist")
    return None


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path} is not valid JSON: {err}") from err


def check_module_classes(folder: Path, *, trust_remote_code: bool = False) -> None:
    """Refuse a folder whose ``modules.json`` names a class outside sentence-transformers, in one line.

    sentence-transformers refuses such a class too (``util/misc.py``, ``import_module_class``), but as a traceback
    from deep inside the load; importing the class would run code that came with the folder.
    """
    path = folder / _ST_MARKER
    modules = _read_json(path)
    if modules is None or trust_remote_code:
        return
    if not isinstance(modules, list) or not all(isinstance(entry, dict) for entry in modules):
        raise ModelLoadError(f"{path}: expected a JSON list of modules, each an object with 'type' and 'path'")
    for entry in modules:
        ref = str(entry.get("type", ""))
        if not ref.startswith("sentence_transformers."):
            raise ModelLoadError(
                f"{path}: module {entry.get('name', entry.get('idx'))!r} is the class {ref!r}, which is not part of "
                "sentence-transformers; loading it would run code that came with the model folder, so it is refused. "
                "Inspect the folder and, only if you trust it, pass --trust_remote_code true"
            )


def _transformer_config_dir(folder: Path) -> Path:
    """Where the transformers config.json sits (the Transformer module's path inside an ST folder)."""
    modules = _read_json(folder / _ST_MARKER)
    if isinstance(modules, list):
        for entry in modules:
            if str(entry.get("type", "")).endswith("Transformer"):
                return folder / entry.get("path", "")
    return folder


def require_hub_model(repo_id: str, *, revision: str | None = None) -> None:
    """Fail at once when Hub model ``repo_id`` cannot be loaded: the Hub unreachable and the model not cached."""
    from st_qwen3emb.hub_access import unavailable_model

    reason = unavailable_model(repo_id, revision=revision)
    if reason is not None:
        raise ModelLoadError(
            f"{repo_id!r} is not a local folder, and it cannot come from the Hugging Face Hub: {reason}, and it is "
            "not in the local Hub cache. Pass a local model folder instead (one with config.json or modules.json)."
        )


def read_model_type(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False) -> str | None:
    """The transformers ``model_type`` behind a folder or Hub id (``None`` when there is none)."""
    folder = resolve_local_folder(name_or_path)
    if folder is not None:
        config = _read_json(_transformer_config_dir(folder) / "config.json")
        if config is None and (folder / "adapter_config.json").is_file():
            adapter = _read_json(folder / "adapter_config.json") or {}
            base = adapter.get("base_model_name_or_path")
            return read_model_type(base, revision=revision) if base else None
        return (config or {}).get("model_type")
    require_hub_model(name_or_path, revision=revision)
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code).model_type
    except (OSError, ValueError):
        return None  # let sentence-transformers raise its own, fuller error


def is_qwen3_model(model: SentenceTransformer) -> bool:
    """Whether a loaded sentence-transformers model wraps a Qwen3 transformer."""
    first = model[0]
    config = getattr(getattr(first, "model", None), "config", None)
    return getattr(config, "model_type", None) in QWEN3_MODEL_TYPES


# --- the protocol ---------------------------------------------------------------------------------
def ensure_eos_appended(tokenizer: Any) -> bool:
    """Make ``tokenizer`` append ``<|endoftext|>`` to every sequence; return True when it had to be fixed.

    Upstream's current tokenizer does this with a TemplateProcessing post-processor; older revisions and
    tokenizers rebuilt from vocab.json/merges.txt do not. The fix installs the same post-processor on the
    fast tokenizer, which is saved in tokenizer.json, so the saved model keeps the rule without this
    package. Because the post-processor adds the token, truncation reserves room for it and never drops it.
    """
    eos_id = tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    ids = tokenizer("a")["input_ids"]
    if ids and ids[-1] == eos_id:
        return False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(
            "this Qwen3 tokenizer does not append <|endoftext|> and is not a fast (tokenizers) tokenizer, "
            "so the rule cannot be saved with the model; provide tokenizer.json"
        )
    from tokenizers import processors

    eos = protocol.EOS_TOKEN
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {eos}:0",
        pair=f"$A:0 {eos}:0 $B:1 {eos}:1",
        special_tokens=[(eos, eos_id)],
    )
    ids = tokenizer("a")["input_ids"]
    if not ids or ids[-1] != eos_id:
        raise ModelLoadError("could not make the tokenizer append <|endoftext|>")
    logger.warning("The tokenizer did not append <|endoftext|>; fixed (the fix is saved with the model).")
    return True


# Tokens kept beyond max_length when a text is cut to its character budget: only the last pre-token before the
# cut can tokenise differently from the whole text, and it lies far past the truncation point.
CLIP_MARGIN_TOKENS = 64


def max_chars_per_token(tokenizer: Any) -> int:
    """The most characters one token of a byte-level BPE tokenizer can cover: its longest vocabulary entry.

    Byte-level BPE writes one vocabulary character per byte, and a text character is at least one byte.
    """
    return max(len(token) for token in tokenizer.get_vocab())


def char_budget(max_length: int, chars_per_token: int) -> int:
    """Characters that surely tokenise to more than ``max_length`` tokens, so cutting there changes nothing kept."""
    return (max_length + CLIP_MARGIN_TOKENS) * chars_per_token


class ClipLongTexts:
    """A Transformer module's ``preprocess`` that first cuts each text to ``char_budget`` characters.

    The tokenizer truncates only after tokenising the whole text (a 50 MB row took minutes and gigabytes); the cut
    text gives the same first ``max_length`` tokens, and truncation then works as before, appending
    ``<|endoftext|>`` last. Installed on the module instance, so training (the data collator calls
    ``model.preprocess``), ``encode`` and evaluation all pass through it; the saved model is unchanged.
    """

    def __init__(self, module: Any) -> None:
        self.module = module  # deep copies of the module copy this object with it and point here to the copy
        self.chars_per_token = max_chars_per_token(module.tokenizer)

    def budget(self, kwargs: dict[str, Any]) -> int | None:
        text_kwargs = (kwargs.get("processing_kwargs") or {}).get("text") or {}
        lengths = [n for n in (kwargs.get("max_length"), text_kwargs.get("max_length"), self.module.max_seq_length) if n]
        return char_budget(max(lengths), self.chars_per_token) if lengths else None

    def __call__(self, inputs: Any, prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        budget = self.budget(kwargs)
        if budget is not None and isinstance(inputs, (list, tuple)):
            inputs = [text[:budget] if isinstance(text, str) else text for text in inputs]
        return type(self.module).preprocess(self.module, inputs, prompt=prompt, **kwargs)


def apply_qwen3_protocol(
    model: SentenceTransformer,
    *,
    max_seq_length: int | None = None,
    query_instruction: str | None = None,
) -> SentenceTransformer:
    """Bring a loaded Qwen3 sentence-transformers model in line with the official protocol (in place)."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    transformer = model[0]
    # Plain strings only: a "message" modality makes sentence-transformers apply the chat template.
    modality_config = getattr(transformer, "modality_config", None)
    if isinstance(modality_config, dict) and "text" in modality_config:
        if modality_config.pop("message", None) is not None:
            transformer.input_formatter.supported_modalities = list(modality_config)
    tokenizer = transformer.tokenizer
    tokenizer.padding_side = protocol.PADDING_SIDE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = protocol.EOS_TOKEN
    ensure_eos_appended(tokenizer)
    if not isinstance(transformer.__dict__.get("preprocess"), ClipLongTexts):
        transformer.preprocess = ClipLongTexts(transformer)

    pooling = next((m for m in model if isinstance(m, Pooling)), None)
    if pooling is None:
        raise ModelLoadError("this Qwen3 sentence-transformers model has no Pooling module")
    if pooling.pooling_mode != "lasttoken":
        logger.warning(
            "This Qwen3 model pools with %r; the Qwen3 protocol is last-token pooling. Keeping the model's choice.",
            pooling.pooling_mode,
        )
    if not isinstance(model[len(model) - 1], Normalize):
        model.append(Normalize())

    prompts = protocol.default_prompts(query_instruction)
    if query_instruction is None and model.prompts.get("query"):
        prompts["query"] = model.prompts["query"]  # keep the folder's own query instruction
    model.prompts = {**model.prompts, **prompts}
    model.similarity_fn_name = "cosine"

    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    elif model.max_seq_length is None or model.max_seq_length > protocol.DEFAULT_MAX_SEQ_LENGTH:
        model.max_seq_length = protocol.DEFAULT_MAX_SEQ_LENGTH
    return model


# --- loading ----------------------------------------------------------------------------------------
def transformers_kwargs(dtype: str | torch.dtype | None, attn_implementation: str | None) -> dict[str, Any]:
    """The ``model_kwargs`` for sentence-transformers: only what the caller set."""
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    return kwargs


def _build_from_bare_checkpoint(
    path: str, *, device: str | None, model_kwargs: dict[str, Any], revision: str | None, trust_remote_code: bool
) -> SentenceTransformer:
    """Transformer -> last-token Pooling -> Normalize around a checkpoint with no sentence-transformers files.

    Built explicitly because sentence-transformers' automatic choice of pooling depends on its version
    (older ones pick mean pooling for ``Qwen3Model``), and because its automatic text handling applies the
    chat template when the tokenizer has one.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(
        path,
        # Text only: with a "message" modality sentence-transformers would wrap plain strings in the
        # tokenizer's chat template, which Qwen3 embeddings were not trained on.
        modality_config={"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        module_output_name="token_embeddings",
        model_kwargs={**model_kwargs, "revision": revision, "trust_remote_code": trust_remote_code},
        processor_kwargs={"revision": revision, "trust_remote_code": trust_remote_code},
        config_kwargs={"revision": revision, "trust_remote_code": trust_remote_code},
    )
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken", include_prompt=True)
    return SentenceTransformer(modules=[transformer, pooling, Normalize()], device=device, similarity_fn_name="cosine")


def instantiate(
    model_class: type, name_or_path: str, folder: Path | None, *, device: str | None, revision: str | None,
    trust_remote_code: bool, model_kwargs: dict[str, Any],
) -> Any:
    """``SentenceTransformer(...)`` or ``CrossEncoder(...)`` from a local folder or Hub id, with a clear Hub error."""
    try:
        return model_class(
            str(folder) if folder is not None else name_or_path,
            device=device,
            revision=revision,
            trust_remote_code=trust_remote_code,
            model_kwargs=model_kwargs or None,
        )
    except OSError as err:
        if folder is None:
            raise ModelLoadError(
                f"could not load {name_or_path!r} from the Hugging Face Hub ({err}). If you are offline, "
                "pass a local folder instead."
            ) from err
        raise


def load_model(
    name_or_path: str,
    *,
    max_seq_length: int | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    query_instruction: str | None = None,
    model_type: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> SentenceTransformer:
    """Load ``name_or_path`` as a ``SentenceTransformer`` that follows the Qwen3 protocol when it is a Qwen3 model.

    Args:
        name_or_path: a local folder (sentence-transformers or bare transformers) or a Hub id.
        max_seq_length: truncation length; Qwen3 models default to ``protocol.DEFAULT_MAX_SEQ_LENGTH``.
        device, dtype, attn_implementation: passed to sentence-transformers / transformers.
        query_instruction: the task instruction for queries (Qwen3 only), stored in the model's prompts.
        model_type: ``"qwen3_emb"`` to insist the model is a Qwen3 embedding model; inferred when omitted.
        revision, trust_remote_code: as in transformers; remote code is never run unless asked for.
    """
    from sentence_transformers import SentenceTransformer

    name_or_path = str(name_or_path)
    folder = resolve_local_folder(name_or_path)
    if folder is not None:
        check_module_classes(folder, trust_remote_code=trust_remote_code)
    detected = read_model_type(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    is_qwen = detected in QWEN3_MODEL_TYPES
    if model_type not in (None, MODEL_TYPE_EMBEDDING):
        raise ModelLoadError(f"unknown embedding model_type {model_type!r}; expected {MODEL_TYPE_EMBEDDING!r} or none")
    if not is_qwen and (model_type == MODEL_TYPE_EMBEDDING or query_instruction is not None):
        option = "model_type='qwen3_emb'" if model_type else "query_instruction"
        raise ModelLoadError(
            f"{name_or_path!r} is not a Qwen3 model (model_type {detected!r}); {option} applies only to Qwen3. "
            "For other models set prompts on the SentenceTransformer instead."
        )

    model_kwargs = transformers_kwargs(dtype, attn_implementation)
    has_st_files = folder is not None and ((folder / _ST_MARKER).is_file() or (folder / "adapter_config.json").is_file())
    if is_qwen and folder is not None and not has_st_files:
        model = _build_from_bare_checkpoint(
            str(folder), device=device, model_kwargs=model_kwargs, revision=revision, trust_remote_code=trust_remote_code
        )
    else:
        model = instantiate(
            SentenceTransformer, name_or_path, folder, device=device, revision=revision,
            trust_remote_code=trust_remote_code, model_kwargs=model_kwargs,
        )

    if is_qwen:
        apply_qwen3_protocol(model, max_seq_length=max_seq_length, query_instruction=query_instruction)
    elif max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model
