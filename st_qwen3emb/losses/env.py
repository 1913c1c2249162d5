"""The environment variables swift's losses read: ``INFONCE_*`` as an explicit options object, and the reranker's.

ms-swift configures its InfoNCE loss only through environment variables, read at every loss call. We read the same
variables with the same defaults (swift 4.x) and the same boolean spelling, but every option can also be given as a
keyword argument, which wins over the variable. ``resolve_infonce_options`` is called at each loss call, so changing a
variable between steps takes effect as in swift, unless the option was pinned by a keyword.

| variable | option | default |
| --- | --- | --- |
| ``INFONCE_TEMPERATURE`` | ``temperature`` | 0.1 (swift 4; swift <= 3.10 and the seed recipe used 0.01) |
| ``INFONCE_USE_BATCH`` | ``use_batch`` | True |
| ``INFONCE_HARD_NEGATIVES`` | ``hard_negatives`` | None (use every negative column) |
| ``INFONCE_MASK_FAKE_NEGATIVE`` | ``mask_fake_negative`` | False |
| ``INFONCE_FAKE_NEG_MARGIN`` | ``fake_neg_margin`` | 0.1 |
| ``INFONCE_INCLUDE_QQ`` | ``include_qq`` | False |
| ``INFONCE_INCLUDE_DD`` | ``include_dd`` | False |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TEMPERATURE = 0.1
SEED_TEMPERATURE = 0.01  # swift <= 3.10's default, used by the seed recipe; pass temperature=0.01 to reproduce it


@dataclass(frozen=True)
class InfoNCEOptions:
    temperature: float = DEFAULT_TEMPERATURE
    use_batch: bool = True
    hard_negatives: int | None = None
    mask_fake_negative: bool = False
    fake_neg_margin: float = 0.1
    include_qq: bool = False
    include_dd: bool = False

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"infonce temperature must be > 0, got {self.temperature}")
        if self.hard_negatives is not None and self.hard_negatives < 0:
            raise ValueError(f"infonce hard_negatives must be >= 0, got {self.hard_negatives}")


ENV_VARIABLES: dict[str, str] = {
    "temperature": "INFONCE_TEMPERATURE",
    "use_batch": "INFONCE_USE_BATCH",
    "hard_negatives": "INFONCE_HARD_NEGATIVES",
    "mask_fake_negative": "INFONCE_MASK_FAKE_NEGATIVE",
    "fake_neg_margin": "INFONCE_FAKE_NEG_MARGIN",
    "include_qq": "INFONCE_INCLUDE_QQ",
    "include_dd": "INFONCE_INCLUDE_DD",
}

# The reranker's variables: the group sampling both reranker losses train on, and the listwise loss's options
# (defaults next to their readers, ``st_qwen3emb.reranker.data`` and ``st_qwen3emb.reranker.losses``).
MAX_POSITIVE_ENV = "MAX_POSITIVE_SAMPLES"
MAX_NEGATIVE_ENV = "MAX_NEGATIVE_SAMPLES"
LISTWISE_TEMPERATURE_ENV = "LISTWISE_RERANKER_TEMPERATURE"
LISTWISE_MIN_GROUP_SIZE_ENV = "LISTWISE_RERANKER_MIN_GROUP_SIZE"
RERANKER_SAMPLING_ENV = (MAX_POSITIVE_ENV, MAX_NEGATIVE_ENV)
LISTWISE_ENV = (LISTWISE_TEMPERATURE_ENV, LISTWISE_MIN_GROUP_SIZE_ENV)

_TRUE = ("y", "yes", "t", "true", "on", "1")  # the spelling swift accepts (transformers' strtobool)
_FALSE = ("n", "no", "f", "false", "off", "0")


def parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean; use one of {', '.join(_TRUE + _FALSE)}")


def env_number(name: str, default: float | int, kind: type) -> Any:
    """``kind(os.environ[name])`` or ``default``; a clear error naming the variable for a bad value."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a valid {kind.__name__}") from None


def _parse(field: str, text: str) -> Any:
    name = ENV_VARIABLES[field]
    if field in ("temperature", "fake_neg_margin"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name}={text!r} is not a number") from None
    if field == "hard_negatives":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name}={text!r} is not an integer") from None
    return parse_bool(text, name)


def resolve_infonce_options(environ: Mapping[str, str] | None = None, **explicit: Any) -> InfoNCEOptions:
    """Options from keywords (those not None) over ``INFONCE_*`` variables over the defaults.

    ``environ`` defaults to ``os.environ`` read now. An unknown keyword is an error naming the known ones.
    """
    unknown = sorted(set(explicit) - set(ENV_VARIABLES))
    if unknown:
        raise TypeError(f"unknown infonce option(s) {unknown}; known: {sorted(ENV_VARIABLES)}")
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in dataclasses.fields(InfoNCEOptions):
        if explicit.get(field.name) is not None:
            values[field.name] = explicit[field.name]
        elif (text := environ.get(ENV_VARIABLES[field.name])) is not None and text.strip() != "":
            values[field.name] = _parse(field.name, text)
    return InfoNCEOptions(**values)


def infonce_environment(loss_type: str) -> dict[str, Any]:
    """The ``INFONCE_*`` settings in effect now (variable or default), by variable name."""
    options = resolve_infonce_options()
    return {name: getattr(options, field) for field, name in ENV_VARIABLES.items()}
