"""A saved model's ``config.json`` keeps its base's: the special token ids, and every other key but the dtype.

Two things rewrite a Qwen3-Embedding config between loading and saving:

- transformers' ``Trainer`` aligns the config's special token ids with the tokenizer when it is built
  (``align_special_tokens`` in transformers' ``trainer_utils.py``). Qwen3's tokenizer pads with ``<|endoftext|>``
  and ends chats with ``<|im_end|>``, so the config gains ``pad_token_id: 151643`` and ``eos_token_id: 151645``.
  On reload ``pad_token_id`` becomes ``nn.Embedding``'s ``padding_idx``: the row of ``<|endoftext|>``, the token
  the embedding is read from, would get no gradient in the next fine-tune.
- sentence-transformers loads the bare ``Qwen3Model`` with ``use_cache=False`` and ``save_pretrained`` writes
  what it holds (``architectures: ["Qwen3Model"]``, ``use_cache: false``) over the base's values.

``keep_token_ids`` undoes the first in memory (checkpoints then save the base's ids); ``keep_base_config``
rewrites a saved ``config.json`` so every key the base's file has keeps the base's value, except the dtype
(the weights may be saved in another precision) and ``transformers_version`` (the version that wrote the files).
Keys only the new file has (transformers' newer spellings, such as ``rope_parameters``) stay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")
# Facts about the saved files themselves rather than about the model.
NOT_KEPT = ("dtype", "torch_dtype", "transformers_version")


def _transformers_model(model: Any) -> Any | None:
    """The transformers model inside a sentence-transformers model (the PEFT wrapper's base for LoRA)."""
    inner = getattr(model[0], "model", None) if len(model) else None
    if inner is not None and hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    return inner if inner is not None and hasattr(inner, "config") else None


def keep_token_ids(model: Any) -> Any:
    """A ``TrainerCallback`` that puts the model's token ids (config and generation config) back as they are now.

    The ``Trainer`` aligns them with the tokenizer at the start of ``train()``, before its ``on_train_begin``
    callbacks run; restoring there means every checkpoint and the final model save the base's ids.
    """
    from transformers import TrainerCallback

    inner = _transformers_model(model)
    configs = [] if inner is None else [inner.config, getattr(inner, "generation_config", None)]
    kept = [(c, {k: getattr(c, k, None) for k in TOKEN_ID_KEYS}) for c in configs if c is not None]

    class KeepTokenIds(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            for config, values in kept:
                for key, value in values.items():
                    setattr(config, key, value)

    return KeepTokenIds()


def _config_path(folder: Path) -> Path:
    """The transformers ``config.json`` of a model folder (a sentence-transformers folder: its Transformer's)."""
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            first = json.loads(modules.read_text(encoding="utf-8"))[0]
            return folder / first.get("path", "") / CONFIG_FILE
        except (ValueError, IndexError, KeyError, TypeError, AttributeError):
            pass
    return folder / CONFIG_FILE


def read_base_config(name_or_path: str | Path | None, revision: str | None = None) -> dict[str, Any] | None:
    """The ``config.json`` of a local model folder or of a Hub model in the local cache (``None`` when unreadable;
    this never reaches for the network)."""
    if not name_or_path:
        return None
    folder = Path(str(name_or_path)).expanduser()
    if folder.is_dir():
        path = _config_path(folder)
    else:
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(str(name_or_path), CONFIG_FILE, revision=revision)
        except ValueError:  # not a valid repository id
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def keep_base_config(folder: str | Path, base: dict[str, Any] | None) -> None:
    """Rewrite the saved ``config.json`` in ``folder`` with the base's values (see the module docstring).

    A token id key the base does not have is removed. Nothing happens without a base or a saved config
    (e.g. a LoRA checkpoint, which holds no ``config.json``).
    """
    if not base:
        return
    path = _config_path(Path(folder))
    if not path.is_file():
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for key, value in base.items():
        if key in saved and key not in NOT_KEPT and saved[key] != value:
            saved[key] = value
            changed = True
    for key in TOKEN_ID_KEYS:
        if key in saved and key not in base:
            del saved[key]
            changed = True
    if changed:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)


def base_name_or_path(model: Any) -> str | None:
    """Where the model's transformers weights were loaded from (a folder or a Hub id), as transformers records it."""
    inner = _transformers_model(model)
    return getattr(inner.config, "_name_or_path", None) if inner is not None else None
