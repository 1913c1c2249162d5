"""swift's environment variables for the losses and the reranker's sampling: how each is read, and the
``INFONCE_*`` ones as an explicit options object.

ms-swift configures its InfoNCE and listwise reranker losses and its reranker data sampling only through environment
variables, read at every loss call. We read the same variables with the same defaults (swift 4.x) and the same
boolean spelling (``st_qwen3emb.booleans``), but every option can also be given as a keyword argument, which wins
over the variable. ``resolve_infonce_options`` is called at each loss call, so changing a variable between steps
takes effect as in swift, unless the option was pinned by a keyword. ``check_variables`` reads them all at once, so
``st-qwen3emb sft`` refuses a bad value at start-up instead of at the first loss call.

A number variable that is empty, ``none`` or ``false`` (any case) is unset: its default applies. swift's embedding
tutorial's ``INFONCE_HARD_NEGATIVES=False`` ("do not fix the number of hard negatives") therefore works here,
although swift itself would fail on it. A boolean variable takes the boolean words; empty is unset. The
``DISTILL_*`` variables are this project's own (swift has no distillation loss), read the same way.

| variable | option | accepted | default |
| --- | --- | --- | --- |
| ``INFONCE_TEMPERATURE`` | ``temperature`` | number > 0 | 0.1 (swift 4; swift <= 3.10 and the seed recipe used 0.01) |
| ``INFONCE_USE_BATCH`` | ``use_batch`` | boolean | True |
| ``INFONCE_HARD_NEGATIVES`` | ``hard_negatives`` | integer >= 0 | None (use every negative column) |
| ``INFONCE_MASK_FAKE_NEGATIVE`` | ``mask_fake_negative`` | boolean | False |
| ``INFONCE_FAKE_NEG_MARGIN`` | ``fake_neg_margin`` | finite number | 0.1 |
| ``INFONCE_INCLUDE_QQ`` | ``include_qq`` | boolean | False |
| ``INFONCE_INCLUDE_DD`` | ``include_dd`` | boolean | False |
| ``MAX_POSITIVE_SAMPLES`` | reranker positives per query | integer >= 1 | 1 |
| ``MAX_NEGATIVE_SAMPLES`` | reranker negatives per positive | integer >= 0 | 7 |
| ``LISTWISE_RERANKER_TEMPERATURE`` | listwise ``temperature`` | number > 0 | 1.0 |
| ``LISTWISE_RERANKER_MIN_GROUP_SIZE`` | listwise ``min_group_size`` | integer >= 0 | 2 |
| ``DISTILL_TEMPERATURE`` | distill_kl ``temperature`` | number > 0 | 0.05 |
| ``DISTILL_TEACHER_TEMPERATURE`` | distill_kl ``teacher_temperature`` | number > 0 | 1.0 |
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from st_qwen3emb.booleans import ACCEPTED as ACCEPTED_BOOLEANS
from st_qwen3emb.booleans import parse_bool

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

MAX_POSITIVE_ENV = "MAX_POSITIVE_SAMPLES"
MAX_NEGATIVE_ENV = "MAX_NEGATIVE_SAMPLES"
LISTWISE_TEMPERATURE_ENV = "LISTWISE_RERANKER_TEMPERATURE"
LISTWISE_MIN_GROUP_SIZE_ENV = "LISTWISE_RERANKER_MIN_GROUP_SIZE"
# The reranker's variables, as its losses' LossSpec.env declare them: the group sampling both reranker losses train
# on, and the listwise loss's options.
RERANKER_SAMPLING_ENV = (MAX_POSITIVE_ENV, MAX_NEGATIVE_ENV)
LISTWISE_ENV = (LISTWISE_TEMPERATURE_ENV, LISTWISE_MIN_GROUP_SIZE_ENV)
DISTILL_TEMPERATURE_ENV = "DISTILL_TEMPERATURE"
DISTILL_TEACHER_TEMPERATURE_ENV = "DISTILL_TEACHER_TEMPERATURE"
DISTILL_ENV = (DISTILL_TEMPERATURE_ENV, DISTILL_TEACHER_TEMPERATURE_ENV)  # distill_kl's LossSpec.env
UNSET_WORDS = ("", "none", "false")  # for number variables; any case


@dataclass(frozen=True)
class Variable:
    """How one variable's text becomes a value: ``kind`` bool, int or float; numbers at least ``minimum``
    (``strict``: above it) and always finite."""

    name: str
    kind: str
    minimum: float | None = None
    strict: bool = False

    def accepted(self) -> str:
        if self.kind == "bool":
            return f"{ACCEPTED_BOOLEANS}, or empty for the default"
        noun = "an integer" if self.kind == "int" else "a number" if self.minimum is not None else "a finite number"
        bound = "" if self.minimum is None else f" {'>' if self.strict else '>='} {self.minimum:g}"
        return f"{noun}{bound}, or empty/none/false for the default"

    def parse(self, text: str) -> Any:
        """The value of ``text``; None when it means unset; ``ValueError`` naming the variable otherwise."""
        word = text.strip()
        if self.kind == "bool":
            if not word:
                return None
            try:
                return parse_bool(word)
            except ValueError:
                raise self._error(text) from None
        if word.lower() in UNSET_WORDS:
            return None
        try:
            value = int(word) if self.kind == "int" else float(word)
        except ValueError:
            raise self._error(text) from None
        if not math.isfinite(value) or (
            self.minimum is not None and (value <= self.minimum if self.strict else value < self.minimum)
        ):
            raise self._error(text)
        return value

    def _error(self, text: str) -> ValueError:
        return ValueError(f"{self.name}={text!r} is not valid; accepted: {self.accepted()}")


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable(ENV_VARIABLES["temperature"], "float", 0, strict=True),
        Variable(ENV_VARIABLES["use_batch"], "bool"),
        Variable(ENV_VARIABLES["hard_negatives"], "int", 0),
        Variable(ENV_VARIABLES["mask_fake_negative"], "bool"),
        Variable(ENV_VARIABLES["fake_neg_margin"], "float"),
        Variable(ENV_VARIABLES["include_qq"], "bool"),
        Variable(ENV_VARIABLES["include_dd"], "bool"),
        Variable(MAX_POSITIVE_ENV, "int", 1),
        Variable(MAX_NEGATIVE_ENV, "int", 0),
        Variable(LISTWISE_TEMPERATURE_ENV, "float", 0, strict=True),
        Variable(LISTWISE_MIN_GROUP_SIZE_ENV, "int", 0),
        Variable(DISTILL_TEMPERATURE_ENV, "float", 0, strict=True),
        Variable(DISTILL_TEACHER_TEMPERATURE_ENV, "float", 0, strict=True),
    )
}


def read_variable(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of the variable ``name`` (one of ``VARIABLES``), or None when it is unset."""
    environ = os.environ if environ is None else environ
    text = environ.get(name)
    return None if text is None else VARIABLES[name].parse(text)


def check_variables(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every variable of ``VARIABLES`` that is set, parsed; the first bad one raises its ``ValueError``."""
    values = {name: read_variable(name, environ) for name in VARIABLES}
    return {name: value for name, value in values.items() if value is not None}


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
        elif (value := read_variable(ENV_VARIABLES[field.name], environ)) is not None:
            values[field.name] = value
    return InfoNCEOptions(**values)


def infonce_environment(loss_type: str) -> dict[str, Any]:
    """The ``INFONCE_*`` settings in effect now (variable or default), by variable name."""
    options = resolve_infonce_options()
    return {name: getattr(options, field) for field, name in ENV_VARIABLES.items()}
