"""Matryoshka (``mrl_dims``): the wrapped loss at several truncated embedding sizes, weighted and summed.

Columns and labels: those of the wrapped loss (any embedding loss of the registry, cached ones included).

Formula: ``sum over (dim, w) in mrl_dims of w * loss(embeddings[..., :dim] re-normalised)``. Only the listed sizes are
trained, as in swift (list the full size too to keep it trained).

Syntax: swift's ``--mrl_dims '{"64":1,"256":1}'`` (a JSON object of size -> weight), or a dict, or a list of sizes
(weights 1). A size larger than the model's embedding dimension is an error here (swift skips it with a warning,
which silently trains something else than asked).

The wrapping itself is sentence-transformers' ``MatryoshkaLoss`` (Kusupati et al., arXiv:2205.13147), which truncates,
re-normalises and weighs exactly this way and handles the gradient-cached losses; this module only parses swift's
syntax and checks it against the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn


def parse_mrl_dims(mrl_dims: str | Mapping[Any, Any] | Sequence[int]) -> dict[int, float]:
    """``{dim: weight}`` from swift's JSON string, a mapping, or a list of dims (weight 1 each); sorted by dim."""
    value: Any = mrl_dims
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(
                f'mrl_dims {mrl_dims!r} is not valid JSON; expected e.g. \'{{"64": 1, "256": 1}}\''
            ) from err
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = [(dim, 1.0) for dim in value]
    else:
        raise ValueError(f"mrl_dims must be a JSON object, a dict or a list of sizes, got {mrl_dims!r}")
    parsed: dict[int, float] = {}
    for dim, weight in items:
        if isinstance(dim, bool) or not (isinstance(dim, int) or (isinstance(dim, str) and dim.strip().isdigit())):
            raise ValueError(f"mrl_dims size {dim!r} is not a positive integer")
        size = int(dim)
        if size <= 0:
            raise ValueError(f"mrl_dims size {dim!r} is not a positive integer")
        if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
            raise ValueError(f"mrl_dims weight {weight!r} for size {size} is not a number")
        try:
            factor = float(weight)
        except ValueError:
            raise ValueError(f"mrl_dims weight {weight!r} for size {size} is not a number") from None
        if size in parsed:
            raise ValueError(f"mrl_dims lists size {size} twice")
        parsed[size] = factor
    if not parsed:
        raise ValueError("mrl_dims is empty; give at least one size, e.g. '{\"64\": 1}'")
    return dict(sorted(parsed.items()))


def with_matryoshka(loss: nn.Module, model: nn.Module, mrl_dims: str | Mapping[Any, Any] | Sequence[int]) -> nn.Module:
    """Wrap ``loss`` in sentence-transformers' ``MatryoshkaLoss`` at the sizes and weights of ``mrl_dims``."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    dims = parse_mrl_dims(mrl_dims)
    get_dimension = getattr(model, "get_embedding_dimension", None)
    model_dim = get_dimension() if callable(get_dimension) else None
    if model_dim is not None:
        too_large = [dim for dim in dims if dim > model_dim]
        if too_large:
            raise ValueError(f"mrl_dims size(s) {too_large} exceed the model's embedding dimension {model_dim}")
    return MatryoshkaLoss(model, loss, list(dims), list(dims.values()))
