"""swift's ``--loss_type`` names as sentence-transformers losses.

``build_loss(loss_type, model, **options)`` returns an ``nn.Module`` called as ``loss(sentence_features, labels)``
(columns in the order anchor, positive, negative_1..k), ready for ``SentenceTransformerTrainer``. ``LOSS_SPECS`` /
``loss_spec(loss_type)`` tell the data layer which columns and which kind of label each loss takes.

Each loss lives in its own module (imported only when built); ``cosent`` and ``angle`` are sentence-transformers'
``CoSENTLoss`` and ``AnglELoss`` unchanged, and the reranker losses live in ``st_qwen3emb.reranker.losses``.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from st_qwen3emb.losses.env import DISTILL_ENV, ENV_VARIABLES, LISTWISE_ENV, RERANKER_SAMPLING_ENV

if TYPE_CHECKING:
    from torch import nn

LabelKind = Literal["similarity", "binary", "score", "teacher_scores"]


@dataclass(frozen=True)
class LossSpec:
    """What a loss reads from a dataset.

    ``columns``: the text columns it needs, in order. ``negatives``: whether ``negative_1..negative_k`` columns may
    follow. ``label``: ``"similarity"`` (a float in [0, 1]), ``"binary"`` (0 or 1), ``"score"`` (a float on any
    scale: only the order of the labels matters, as for CoSENT/AnglE), ``"teacher_scores"`` (a list of a teacher's
    scores of the positive and each negative, for distillation) or None (no label is read; a ``label`` column
    is then ignored). ``task``: ``"embedding"`` or ``"reranker"``. ``env``: the environment variables (swift's
    names) the loss and its data sampling read; ``env_values``: ``"module:function"`` whose
    ``function(loss_type)`` gives their values in effect now (what args.json records).
    """

    columns: tuple[str, ...]
    label: LabelKind | None
    negatives: bool = False
    task: Literal["embedding", "reranker"] = "embedding"
    env: tuple[str, ...] = ()
    env_values: str | None = None

    @property
    def needs_label(self) -> bool:
        return self.label is not None

    @property
    def label_kind(self) -> LabelKind | None:
        return self.label


_PAIR = ("anchor", "positive")
_INFONCE = LossSpec(_PAIR, None, negatives=True, env=tuple(ENV_VARIABLES.values()),
                    env_values="st_qwen3emb.losses.env:infonce_environment")
_RERANKER_ENV_VALUES = "st_qwen3emb.reranker.losses:environment"

# swift name -> (module, attribute, spec). The attribute is a loss class taking (model, **options).
_REGISTRY: dict[str, tuple[str, str, LossSpec]] = {
    "cosine_similarity": (
        "st_qwen3emb.losses.cosine_similarity",
        "CosineSimilarityLoss",
        LossSpec(_PAIR, "similarity"),
    ),
    "contrastive": ("st_qwen3emb.losses.contrastive", "ContrastiveLoss", LossSpec(_PAIR, "binary")),
    "online_contrastive": ("st_qwen3emb.losses.online_contrastive", "OnlineContrastiveLoss", LossSpec(_PAIR, "binary")),
    "infonce": ("st_qwen3emb.losses.infonce", "InfoNCELoss", _INFONCE),
    "cached_infonce": ("st_qwen3emb.losses.cached_infonce", "CachedInfoNCELoss", _INFONCE),
    "distill_kl": (
        "st_qwen3emb.losses.distill_kl",
        "DistillKLLoss",
        LossSpec(_PAIR, "teacher_scores", negatives=True, env=DISTILL_ENV,
                 env_values="st_qwen3emb.losses.distill_kl:environment"),
    ),
    "margin_mse": ("st_qwen3emb.losses.margin_mse", "MarginMSELoss", LossSpec(_PAIR, "teacher_scores", negatives=True)),
    "cosent": ("sentence_transformers.sentence_transformer.losses", "CoSENTLoss", LossSpec(_PAIR, "score")),
    "angle": ("sentence_transformers.sentence_transformer.losses", "AnglELoss", LossSpec(_PAIR, "score")),
    # Reranker data: a query, its positive(s) and negatives; the 1/0 labels follow from the columns.
    "pointwise_reranker": (
        "st_qwen3emb.reranker.losses",
        "PointwiseRerankerLoss",
        LossSpec(_PAIR, None, negatives=True, task="reranker", env=RERANKER_SAMPLING_ENV,
                 env_values=_RERANKER_ENV_VALUES),
    ),
    "listwise_reranker": (
        "st_qwen3emb.reranker.losses",
        "ListwiseRerankerLoss",
        LossSpec(_PAIR, None, negatives=True, task="reranker", env=RERANKER_SAMPLING_ENV + LISTWISE_ENV,
                 env_values=_RERANKER_ENV_VALUES),
    ),
}

LOSS_TYPES: tuple[str, ...] = tuple(_REGISTRY)
LOSS_SPECS: dict[str, LossSpec] = {name: spec for name, (_, _, spec) in _REGISTRY.items()}
EMBEDDING_LOSS_TYPES: tuple[str, ...] = tuple(name for name, spec in LOSS_SPECS.items() if spec.task == "embedding")
# Every environment variable any loss reads (the card keeps them out of the reproduced command's flags).
LOSS_ENV_VARIABLES: tuple[str, ...] = tuple(dict.fromkeys(name for spec in LOSS_SPECS.values() for name in spec.env))


def _check_name(loss_type: str) -> str:
    if loss_type in _REGISTRY:
        return loss_type
    typed = str(loss_type).strip().lower().replace("-", "_")
    # A name typed short ("cosine") means the loss it starts; otherwise the nearest spelling.
    close = [name for name in LOSS_TYPES if name.startswith(typed)] if typed else []
    close = close or difflib.get_close_matches(typed, LOSS_TYPES, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown loss_type {loss_type!r}.{hint} Known loss types: {', '.join(LOSS_TYPES)}")


def loss_spec(loss_type: str) -> LossSpec:
    """The columns and label kind ``loss_type`` needs; an error with a close-match hint for an unknown name."""
    return LOSS_SPECS[_check_name(loss_type)]


def loss_class(loss_type: str) -> type:
    """The class behind a loss name, imported now (the reranker module only when a reranker loss is asked for)."""
    module, attribute, _ = _REGISTRY[_check_name(loss_type)]
    return getattr(importlib.import_module(module), attribute)


def loss_environment(loss_type: str) -> dict[str, Any]:
    """The values in effect now of the environment variables ``loss_type`` reads (its ``LossSpec.env``).

    swift's losses read these variables instead of flags, so args.json records them (variable or default) under
    ``"env"``; the model card shows them and puts them in front of the reproduced command.
    """
    spec = loss_spec(loss_type)
    if spec.env_values is None:
        return {}
    module, function = spec.env_values.split(":")
    values = getattr(importlib.import_module(module), function)(loss_type)
    return {name: value for name, value in values.items() if value is not None}


def build_loss(loss_type: str, model: nn.Module, *, mrl_dims: Any = None, **options: Any) -> nn.Module:
    """The sentence-transformers loss for swift's ``loss_type`` on ``model``.

    ``options`` go to the loss class (e.g. ``temperature=``, ``use_batch=`` for ``infonce``; ``mini_batch_size=``
    for ``cached_infonce``); an option the loss does not take is an error naming the ones it does. ``mrl_dims``
    (a dict size -> weight, swift's JSON string ``'{"64":1,"256":1}'`` or a list of sizes) wraps any embedding loss
    in Matryoshka (see ``st_qwen3emb.losses.matryoshka``).
    """
    spec = loss_spec(loss_type)
    if mrl_dims is not None and spec.task != "embedding":
        raise ValueError(f"mrl_dims applies to embedding losses only, not to {loss_type!r}")
    cls = loss_class(loss_type)
    try:
        loss = cls(model, **options)
    except TypeError as err:
        import inspect

        accepted = [
            name
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "model") and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        if loss_type == "cached_infonce":
            accepted += sorted(set(inspect.signature(loss_class("infonce").__init__).parameters) - {"self", "model"})
        raise TypeError(f"bad option(s) for loss_type {loss_type!r}: {err}. It accepts: {', '.join(accepted)}") from err
    if mrl_dims is not None:
        from st_qwen3emb.losses.matryoshka import with_matryoshka

        loss = with_matryoshka(loss, model, mrl_dims)
    return loss


__all__ = [
    "EMBEDDING_LOSS_TYPES",
    "LOSS_ENV_VARIABLES",
    "LOSS_SPECS",
    "LOSS_TYPES",
    "LossSpec",
    "build_loss",
    "loss_class",
    "loss_environment",
    "loss_spec",
]
