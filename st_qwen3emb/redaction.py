"""Secrets never reach a file, a log or a card: the rule that says what a secret is, and the redaction.

A flag is secret when its name contains ``token``, ``secret`` or ``password`` (``--hub_token``); a value is secret
when it looks like a Hugging Face access token (``hf_`` followed by 20 or more letters and digits), whatever flag
carries it. Booleans are never secrets (``--include_tokens_per_second true`` is kept).

``args.json`` drops secret flags (a resumed run must not restore a placeholder as the token), ``training_args.bin``
holds ``None`` in their place, and token-like values become ``REDACTED`` everywhere. ``find_token`` lets ``push``
refuse a folder that still holds one. Pure Python, no dependencies.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
SECRET_NAME_PARTS = ("token", "secret", "password")
# A Hub access token: hf_ and 34 letters/digits today; 20+ keeps older and future lengths without matching words.
HUB_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}")
_HUB_TOKEN_BYTES_RE = re.compile(HUB_TOKEN_RE.pattern.encode())
_SCAN_CHUNK = 1 << 20


def is_secret_name(name: str) -> bool:
    lowered = str(name).lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def looks_like_token(text: str) -> bool:
    return bool(HUB_TOKEN_RE.search(str(text)))


def redact_text(text: str) -> str:
    """``text`` with every Hub-token-like substring replaced by ``REDACTED``."""
    return HUB_TOKEN_RE.sub(REDACTED, text)


def _is_secret_item(name: str, value: Any) -> bool:
    return is_secret_name(name) and value is not None and not isinstance(value, bool)


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value: secret-named keys dropped, token-like strings replaced."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items() if not _is_secret_item(str(k), v)}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


def redact_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """``mapping`` as it may be written to ``args.json`` or shown in a card."""
    return redact_value(dict(mapping))


def redacted_training_args(args: Any) -> Any:
    """A shallow copy of a ``TrainingArguments`` fit for ``training_args.bin``: secret fields ``None``, token-like
    strings replaced. The original (which a ``--push_to_hub`` run still needs) is left untouched."""
    safe = copy.copy(args)
    for f in dataclasses.fields(args):
        value = getattr(args, f.name, None)
        if _is_secret_item(f.name, value):
            object.__setattr__(safe, f.name, None)
        elif isinstance(value, (str, dict, list, tuple)):
            cleaned = redact_value(value)
            if cleaned != value:
                object.__setattr__(safe, f.name, cleaned)
    return safe


def find_token(path: Path) -> bool:
    """Whether the file holds a Hub-token-like byte string (read in chunks that overlap by more than a token).

    Of a ``.safetensors`` file only the JSON header (names, shapes, metadata) is read: the tensor bytes are numbers,
    and skipping them keeps the scan cheap for multi-gigabyte weights.
    """
    overlap = 128
    tail = b""
    with open(path, "rb") as handle:
        limit = None
        if path.suffix == ".safetensors":
            head = handle.read(8)
            limit = int.from_bytes(head, "little") if len(head) == 8 else 0
            tail = head
        while chunk := handle.read(_SCAN_CHUNK if limit is None else min(_SCAN_CHUNK, limit)):
            if limit is not None:
                limit -= len(chunk)
            window = tail + chunk
            if _HUB_TOKEN_BYTES_RE.search(window):
                return True
            tail = window[-overlap:]
    return False
