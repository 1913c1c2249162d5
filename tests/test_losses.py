"""Pair losses, the registry, loss specs and mrl_dims: each against a reference written from swift-reference.md."""

from __future__ import annotations

import math

import pytest
import torch
from _loss_helpers import DIM, EmbeddingTable, clear_infonce_env
from torch import nn

from st_qwen3emb.losses import EMBEDDING_LOSS_TYPES, LOSS_SPECS, LOSS_TYPES, build_loss, loss_class, loss_spec
from st_qwen3emb.losses.contrastive import contrastive_loss
from st_qwen3emb.losses.cosine_similarity import cosine_similarity_loss
from st_qwen3emb.losses.matryoshka import parse_mrl_dims
from st_qwen3emb.losses.online_contrastive import online_contrastive_loss


@pytest.fixture(autouse=True)
def _clean_infonce_env(monkeypatch):
    clear_infonce_env(monkeypatch)


def cos(x, y):
    return sum(a * b for a, b in zip(x, y, strict=True)) / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))


def pairs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, DIM, generator=g, dtype=torch.float64) * 3.0  # not normalised on purpose
    v = (
        u
        + torch.randn(n, DIM, generator=g, dtype=torch.float64)
        * torch.linspace(0.1, 3.0, n, dtype=torch.float64)[:, None]
    )
    return u, v


def ref_cosine_similarity(u, v, labels):
    return sum((cos(a, b) - y) ** 2 for a, b, y in zip(u.tolist(), v.tolist(), labels, strict=True)) / len(labels)


def ref_contrastive(u, v, labels):
    total = 0.0
    for a, b, y in zip(u.tolist(), v.tolist(), labels, strict=True):
        d = 1 - cos(a, b)
        total += 0.5 * (y * d * d + (1 - y) * max(0.0, 0.5 - d) ** 2)
    return total / len(labels)


def ref_online_contrastive(u, v, labels):
    d = [1 - cos(a, b) for a, b in zip(u.tolist(), v.tolist(), strict=True)]
    pos = [x for x, y in zip(d, labels, strict=True) if y == 1]
    neg = [x for x, y in zip(d, labels, strict=True) if y == 0]
    hard_pos = [x for x in pos if not neg or x > min(neg)]
    hard_neg = [x for x in neg if not pos or x < max(pos)]
    return sum(x * x for x in hard_pos) + sum(max(0.0, 0.5 - x) ** 2 for x in hard_neg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cosine_similarity_matches_reference(seed):
    u, v = pairs(seed=seed)
    labels = [0.0, 0.2, 0.5, 0.75, 0.9, 1.0]
    got = cosine_similarity_loss(u, v, torch.tensor(labels, dtype=torch.float64)).item()
    assert got == pytest.approx(ref_cosine_similarity(u, v, labels), abs=1e-6)


@pytest.mark.parametrize("labels", [[1, 0, 1, 0, 1, 0], [1] * 6, [0] * 6, [0, 0, 0, 1, 1, 1]])
def test_contrastive_matches_reference(labels):
    u, v = pairs()
    got = contrastive_loss(u, v, torch.tensor(labels, dtype=torch.float64)).item()
    assert got == pytest.approx(ref_contrastive(u, v, labels), abs=1e-6)


@pytest.mark.parametrize(
    "labels",
    [[1, 0, 1, 0, 1, 0], [0, 0, 0, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1] * 6, [0] * 6],
    ids=["mixed", "blocks", "one-positive", "no-negatives", "no-positives"],
)
def test_online_contrastive_matches_reference_including_one_sided_batches(labels):
    u, v = pairs(seed=3)
    got = online_contrastive_loss(u, v, torch.tensor(labels, dtype=torch.float64))
    assert got.item() == pytest.approx(ref_online_contrastive(u, v, labels), abs=1e-6)


def test_online_contrastive_is_a_sum_and_selects_hard_pairs_only():
    # Distances 0.0, 0.3 (positives) and 0.2, 0.9 (negatives): hard positive 0.3 (> 0.2), hard negative 0.2 (< 0.3).
    angle = lambda d: torch.tensor([1.0 - d, math.sqrt(1 - (1.0 - d) ** 2)], dtype=torch.float64)  # noqa: E731
    u = torch.tensor([[1.0, 0.0]] * 4, dtype=torch.float64)
    v = torch.stack([angle(0.0), angle(0.3), angle(0.2), angle(0.9)])
    got = online_contrastive_loss(u, v, torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert got.item() == pytest.approx(0.3**2 + (0.5 - 0.2) ** 2, abs=1e-9)
    with pytest.raises(ValueError, match="must be 0 or 1"):
        online_contrastive_loss(u, v, torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize(
    ("name", "reference", "labels"),
    [
        ("cosine_similarity", ref_cosine_similarity, [0.1, 0.9, 0.4, 0.6, 1.0, 0.0]),
        ("contrastive", ref_contrastive, [1, 0, 1, 0, 1, 0]),
        ("online_contrastive", ref_online_contrastive, [1, 0, 1, 0, 1, 0]),
    ],
)
def test_pair_loss_modules_embed_the_columns_and_apply_the_formula(name, reference, labels):
    model = EmbeddingTable()
    u, v = pairs()
    loss = build_loss(name, model)
    value = loss([{"emb": u}, {"emb": v}], torch.tensor(labels, dtype=torch.float64))
    scale = model.scale.detach()
    assert value.item() == pytest.approx(reference(u * scale, v * scale, labels), abs=1e-6)
    value.backward()
    assert model.scale.grad is not None and model.scale.grad.abs().sum() > 0
    assert isinstance(loss.get_config_dict(), dict)


def test_pair_loss_modules_reject_missing_or_miscounted_labels_and_extra_columns():
    u, v = pairs()
    loss = build_loss("cosine_similarity", EmbeddingTable())
    with pytest.raises(ValueError, match="needs a 'label' column"):
        loss([{"emb": u}, {"emb": v}], None)
    with pytest.raises(ValueError, match="one label per pair"):
        loss([{"emb": u}, {"emb": v}], torch.ones(3))
    with pytest.raises(ValueError, match="exactly two text columns"):
        loss([{"emb": u}, {"emb": v}, {"emb": v}], torch.ones(6))


# --- registry and specs -----------------------------------------------------------------------------------------
def test_registry_has_every_swift_name_and_the_extras():
    assert set(LOSS_TYPES) == {
        "cosine_similarity",
        "contrastive",
        "online_contrastive",
        "infonce",
        "cached_infonce",
        "cosent",
        "angle",
        "distill_kl",
        "margin_mse",
        "pointwise_reranker",
        "listwise_reranker",
    }
    assert set(EMBEDDING_LOSS_TYPES) == set(LOSS_TYPES) - {"pointwise_reranker", "listwise_reranker"}


def test_loss_specs_tell_the_data_layer_columns_and_labels():
    assert loss_spec("cosine_similarity").label_kind == "similarity" and loss_spec("cosine_similarity").needs_label
    assert loss_spec("contrastive").label_kind == "binary" and not loss_spec("contrastive").negatives
    assert loss_spec("online_contrastive").label_kind == "binary"
    assert loss_spec("cosent").label_kind == "score" and loss_spec("angle").label_kind == "score"
    for name in ("infonce", "cached_infonce"):
        assert not loss_spec(name).needs_label and loss_spec(name).negatives
    for name in ("pointwise_reranker", "listwise_reranker"):
        assert loss_spec(name).task == "reranker"
    assert all(spec.columns == ("anchor", "positive") for spec in LOSS_SPECS.values())


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("infonse", "infonce"), ("cosine", "cosine_similarity"), ("Contrastive", "contrastive")]
)
def test_unknown_loss_name_is_an_error_with_a_close_match(typo, suggestion):
    with pytest.raises(ValueError, match=f"unknown loss_type '{typo}'. Did you mean '{suggestion}'"):
        build_loss(typo, EmbeddingTable())
    with pytest.raises(ValueError, match="Known loss types: cosine_similarity"):
        loss_spec("zzzzzz")


def test_cosent_and_angle_are_sentence_transformers_own():
    from sentence_transformers.sentence_transformer.losses import AnglELoss, CoSENTLoss

    assert loss_class("cosent") is CoSENTLoss and loss_class("angle") is AnglELoss


def test_reranker_entries_resolve_lazily():
    import sys

    sys.modules.pop("st_qwen3emb.reranker.losses", None)
    assert loss_spec("listwise_reranker").task == "reranker"
    assert "st_qwen3emb.reranker.losses" not in sys.modules  # the spec needs no import
    cls = loss_class("pointwise_reranker")
    assert cls.__module__ == "st_qwen3emb.reranker.losses"
    with pytest.raises(ValueError, match="embedding losses only"):
        build_loss("listwise_reranker", EmbeddingTable(), mrl_dims={4: 1})


# --- mrl_dims ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ('{"64":1,"256":1}', {64: 1.0, 256: 1.0}),
        ({"256": 0.5, 32: 2}, {32: 2.0, 256: 0.5}),
        ("[8, 4]", {4: 1.0, 8: 1.0}),
        ([16], {16: 1.0}),
    ],
)
def test_parse_mrl_dims_accepts_swift_json_dicts_and_lists(given, parsed):
    assert parse_mrl_dims(given) == parsed


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{64:1}", "not valid JSON"),
        ("{}", "empty"),
        ('{"-8": 1}', "not a positive integer"),
        ('{"8.5": 1}', "not a positive integer"),
        ('{"8": "heavy"}', "not a number"),
        ("3", "JSON object, a dict or a list"),
    ],
)
def test_parse_mrl_dims_rejects_bad_input(given, message):
    with pytest.raises(ValueError, match=message):
        parse_mrl_dims(given)


def test_mrl_dims_larger_than_the_model_are_an_error():
    with pytest.raises(ValueError, match=r"\[16\] exceed the model's embedding dimension 8"):
        build_loss("infonce", EmbeddingTable(), mrl_dims='{"4": 1, "16": 1}')


def _truncated(x, dim):
    return torch.nn.functional.normalize(x[..., :dim], dim=-1)


@pytest.mark.parametrize(
    "name", ["cosine_similarity", "contrastive", "online_contrastive", "infonce", "cosent", "angle"]
)
def test_mrl_dims_is_the_weighted_sum_of_the_loss_at_each_truncated_size(name):
    model = EmbeddingTable()
    u, v = pairs()
    w = pairs(seed=5)[1]
    labels = torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.float64)
    columns = [{"emb": u}, {"emb": v}] + ([{"emb": w}] if name == "infonce" else [])
    dims = {2: 0.5, 4: 1.0, 8: 2.0}
    wrapped = build_loss(name, model, mrl_dims='{"2": 0.5, "4": 1, "8": 2}')
    got = wrapped([dict(c) for c in columns], labels)
    plain = build_loss(name, model)
    scale = model.scale.detach()

    class Truncated(nn.Module):  # the same model, cut to `dim` and re-normalised by hand
        def __init__(self, dim):
            super().__init__()
            self.dim = dim

        def forward(self, features):
            return {"sentence_embedding": _truncated(features["emb"] * scale, self.dim)}

    want = 0.0
    for dim, weight in dims.items():
        plain.model = Truncated(dim)
        want += weight * plain([dict(c) for c in columns], labels).item()
    assert got.item() == pytest.approx(want, abs=1e-6)
