"""LoRA on a sentence-transformers model: add an adapter for training, check a loaded one, merge it.

The adapter is a ``peft.PeftModel`` wrapped around the Transformer module's inner transformers model, so
``model.save(dir)`` writes ``adapter_config.json`` + ``adapter_model.safetensors`` (keys
``base_model.model.<module>.lora_A.weight``) next to the sentence-transformers files, and a plain
``SentenceTransformer(dir)`` loads the base model named in ``base_model_name_or_path`` and applies the
adapter (sentence-transformers resolves the base config, transformers' ``from_pretrained`` loads the adapter).

Why not ``SentenceTransformer.add_adapter``: that goes through transformers' PEFT integration, which in
transformers 5.24 demands peft >= 0.22 for adding and saving adapters (not yet released), while loading a
saved adapter works with peft 0.21. Wrapping with ``get_peft_model`` needs only peft and saves the same files.

A model loaded from such a checkpoint holds the adapter injected into its layers (no ``PeftModel``);
``merge_lora`` handles both forms. ``check_adapter_loaded`` guards against the failure other tools show,
a merged model that behaves like the base model because the adapter's keys did not match the module tree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

# The linear layers of a Qwen3 decoder block (attention and MLP); what swift's "all-linear" covers there.
QWEN3_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ALL_LINEAR = "all-linear"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_PEFT_PREFIX = "base_model.model."
_HF_CACHE_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][0-9a-f]+")


class LoraError(ValueError):
    """A LoRA request or adapter that cannot be used; the message says why."""


def _transformer(model: SentenceTransformer):
    first = model[0]
    if not hasattr(first, "model"):
        raise LoraError(f"LoRA needs a Transformer module first in the model; found {type(first).__name__}")
    return first


def _tuner_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The outermost peft tuner layers (LoRA-wrapped linears) inside ``module``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    found: list[tuple[str, torch.nn.Module]] = []
    for name, sub in module.named_modules():
        if isinstance(sub, BaseTunerLayer) and not any(name.startswith(outer + ".") for outer, _ in found):
            found.append((name, sub))
    return found


def has_lora(model: SentenceTransformer) -> bool:
    """Whether the model's transformer carries a LoRA adapter (wrapped for training, or loaded from a checkpoint)."""
    return bool(_tuner_layers(_transformer(model).model))


def is_adapter_checkpoint(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def resolve_target_modules(model: SentenceTransformer, target_modules: str | list[str] | tuple[str, ...]):
    """swift's ``--target_modules``: ``all-linear`` means the Qwen3 block linears on Qwen3, peft's rule elsewhere."""
    from st_qwen3emb.model import is_qwen3_model

    if isinstance(target_modules, str):
        names = [t for t in re.split(r"[,\s]+", target_modules) if t]
    else:
        names = [str(t) for t in target_modules]
    if not names:
        raise LoraError("target_modules is empty; use 'all-linear' or module names such as q_proj,v_proj")
    if names == [ALL_LINEAR]:
        return list(QWEN3_LORA_TARGETS) if is_qwen3_model(model) else ALL_LINEAR
    if ALL_LINEAR in names:
        raise LoraError(f"'{ALL_LINEAR}' cannot be combined with module names: {names}")
    return names


def portable_base_name(name_or_path: str | None) -> str | None:
    """A Hub cache snapshot path becomes its Hub id, so the adapter's base resolves on other machines too."""
    if not name_or_path:
        return name_or_path
    match = _HF_CACHE_SNAPSHOT.search(str(name_or_path))
    if match:
        return f"{match['org']}/{match['name']}"
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else str(name_or_path)


def add_lora(
    model: SentenceTransformer,
    *,
    rank: int = 16,
    alpha: int | float = 32,
    dropout: float = 0.1,
    target_modules: str | list[str] | tuple[str, ...] = ALL_LINEAR,
) -> SentenceTransformer:
    """Wrap the model's transformer in a trainable LoRA adapter (in place; returns the model).

    Only the adapter's parameters stay trainable. ``model.save(dir)`` then writes the adapter plus the
    sentence-transformers files; ``SentenceTransformer(dir)`` loads it with the adapter applied.
    """
    from peft import LoraConfig, get_peft_model

    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise LoraError(f"lora rank must be a positive integer, got {rank!r}")
    if not alpha or alpha <= 0:
        raise LoraError(f"lora alpha must be positive, got {alpha!r}")
    if not 0 <= dropout < 1:
        raise LoraError(f"lora dropout must be in [0, 1), got {dropout!r}")
    transformer = _transformer(model)
    if has_lora(model):
        raise LoraError("the model already carries a LoRA adapter; merge it (merge_lora) before adding another")

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=resolve_target_modules(model, target_modules),
        bias="none",
    )
    inner = transformer.model
    peft_model = get_peft_model(inner, config)
    peft_model.peft_config["default"].base_model_name_or_path = portable_base_name(
        getattr(inner, "name_or_path", None)
    )
    transformer.model = peft_model
    return model


def load_training_adapter(model: SentenceTransformer, checkpoint: str | Path) -> None:
    """Set the adapter ``add_lora`` put on ``model`` to the one saved in ``checkpoint`` (resuming a LoRA run).

    A LoRA checkpoint holds only the adapter, so this loads those tensors into the live ``PeftModel`` (peft's
    ``set_peft_model_state_dict``, what ``PeftModel.load_adapter`` uses) instead of a whole model's state dict.
    """
    from peft import PeftModel, set_peft_model_state_dict

    inner = _transformer(model).model
    if not isinstance(inner, PeftModel):
        raise LoraError(f"{checkpoint} holds a LoRA adapter, but the model being trained has none to load it into")
    # the checkpoint restores the adapter only: other trainable weights would silently restart from the base
    others = [n for n, p in model.named_parameters() if p.requires_grad and ".lora_" not in n]
    if others:
        raise LoraError(f"cannot resume from {checkpoint}: trainable weights outside the adapter ({others[0]}) "
                        "are not in a LoRA checkpoint")
    saved = read_adapter_weights(checkpoint)
    set_peft_model_state_dict(inner, saved, adapter_name=inner.active_adapter)
    bad = adapter_mismatch(model, saved)
    if bad:
        raise LoraError(f"{checkpoint}: {len(bad)} adapter tensor(s) do not fit the model, e.g. {bad[0]}")


def merge_lora(model: SentenceTransformer) -> SentenceTransformer:
    """Fold the LoRA adapter into the base weights and remove it (in place; returns the model)."""
    from peft import PeftModel

    transformer = _transformer(model)
    inner = transformer.model
    if isinstance(inner, PeftModel):
        transformer.model = inner.merge_and_unload()
    else:
        layers = _tuner_layers(inner)
        if not layers:
            raise LoraError("the model has no LoRA adapter to merge")
        # Loaded from a checkpoint: transformers injected the adapter into the layers without a PeftModel,
        # so there is no merge_and_unload; each tuner layer merges itself and is swapped for its base layer.
        # Hand-written because neither peft nor transformers has a public merge for an adapter loaded this way;
        # guarded by tests/test_lora_export.py::test_merge_lora_keeps_embeddings and
        # ::test_merged_export_in_plain_process (the merged export must reload with the adapter model's embeddings).
        for name, layer in layers:
            layer.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(inner.get_submodule(parent_name) if parent_name else inner, child, layer.get_base_layer())
        if hasattr(inner, "peft_config"):
            del inner.peft_config
        inner._hf_peft_config_loaded = False
        # Loading the adapter left its key renamings (``base_model.model.`` prefix, ``lora_*.default``) as the
        # model's weight conversions, which save_pretrained reverses: the merged weights would be saved under
        # adapter-style names that no loader matches, i.e. the export would load as random weights.
        conversions = getattr(inner, "_weight_conversions", None)
        if conversions:
            inner._weight_conversions = [c for c in conversions if not _is_adapter_renaming(c)]
    if has_lora(model):
        raise LoraError("merging left LoRA layers in the model")
    return model


def _is_adapter_renaming(conversion: object) -> bool:
    patterns = [*getattr(conversion, "source_patterns", ()), *getattr(conversion, "target_patterns", ())]
    return any(_PEFT_PREFIX in str(p) or "lora_" in str(p) for p in patterns)


def read_adapter_config(checkpoint: str | Path) -> dict:
    path = Path(checkpoint) / ADAPTER_CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoraError(f"{checkpoint} is not a LoRA checkpoint: it has no {ADAPTER_CONFIG}") from None
    except json.JSONDecodeError as err:
        raise LoraError(f"{path} is not valid JSON: {err}") from err


def read_adapter_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The adapter tensors as saved, keyed as peft saves them (``base_model.model.<module>.lora_A.weight``)."""
    folder = Path(checkpoint)
    if (folder / ADAPTER_WEIGHTS[0]).is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / ADAPTER_WEIGHTS[0]))
    if (folder / ADAPTER_WEIGHTS[1]).is_file():
        import torch

        return torch.load(str(folder / ADAPTER_WEIGHTS[1]), map_location="cpu", weights_only=True)
    raise LoraError(f"{folder} has {ADAPTER_CONFIG} but no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")


def loaded_adapter_weights(model: SentenceTransformer, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """The model's live adapter tensors under the saved key names, for comparison with the checkpoint file."""
    marker = f".{adapter_name}."
    out = {}
    for name, param in _transformer(model).model.named_parameters():
        if marker not in name or ".lora_" not in name:
            continue
        key = name.replace(marker, ".")
        out[key if key.startswith(_PEFT_PREFIX) else _PEFT_PREFIX + key] = param
    return out


def adapter_mismatch(model: SentenceTransformer, saved: dict[str, torch.Tensor]) -> list[str]:
    """Saved adapter keys that did not land in the model with their values (empty when the adapter loaded fully)."""
    import torch

    live = loaded_adapter_weights(model)
    bad = []
    for key, tensor in saved.items():
        target = live.get(key)
        if target is None or target.shape != tensor.shape or not torch.equal(target.detach().cpu(), tensor.to(target.dtype)):
            bad.append(key)
    return bad


def strip_module_prefix(saved: dict[str, torch.Tensor], live_keys: set[str]) -> dict[str, torch.Tensor] | None:
    """Re-key an adapter trained on a wrapper model (``...model.layers.0...`` from ``*ForCausalLM``) for the bare model.

    Returns ``None`` unless dropping one leading module name makes every key fit the live model.
    """
    renamed = {}
    for key, tensor in saved.items():
        rest = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
        head, _, tail = rest.partition(".")
        new = _PEFT_PREFIX + tail
        if not tail or new not in live_keys:
            return None
        renamed[new] = tensor
    return renamed
