"""The length-bucketed forward of the losses (``st_qwen3emb/losses/_forward.py``): same embeddings and gradients as
one pass per column, fewer padded tokens, an optimal cut."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from st_qwen3emb import load_model
from st_qwen3emb.losses import _forward
from st_qwen3emb.losses._forward import embed_columns, plan_buckets

TEXTS = [
    ["A man plays a guitar.", "Hi", "The quick brown fox jumps over the lazy dog near the river bank at dawn today."],
    ["Someone is playing an instrument on a stage in front of a large crowd of people.", "Hello there", "A fox."],
    ["Short.", "Two words", "A medium length sentence about nothing in particular."],
]


def _cost(lengths: list[int], ends: list[int], pass_cost: int) -> int:
    starts = [0, *ends[:-1]]
    return sum((end - start) * lengths[end - 1] + pass_cost for start, end in zip(starts, ends, strict=True))


def test_plan_buckets_is_optimal_against_every_partition():
    rng = random.Random(0)
    for _ in range(200):
        lengths = sorted(rng.randint(1, 40) for _ in range(rng.randint(1, 9)))
        pass_cost = rng.choice([0, 5, 30, 200])
        plan = plan_buckets(lengths, pass_cost)
        assert plan[-1] == len(lengths) and plan == sorted(set(plan))
        best = min(
            _cost(lengths, [*cuts, len(lengths)], pass_cost)
            for k in range(len(lengths))
            for cuts in itertools.combinations(range(1, len(lengths)), k)
        )
        assert _cost(lengths, plan, pass_cost) == best


def test_plan_buckets_keeps_uniform_batches_whole_and_splits_mixed_ones():
    assert plan_buckets([7] * 16, 64) == [16]
    assert plan_buckets([3] * 30 + [50] * 30, 64) == [30, 60]  # 1,440 padded tokens saved for one more pass
    assert plan_buckets([3] * 30 + [50] * 30, 10_000) == [60]  # a pass that costs more than it saves
    assert plan_buckets([], 64) == []


class _CountingModel(torch.nn.Module):
    """Wraps a SentenceTransformer and records the shape of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, features):
        self.shapes.append(tuple(features["input_ids"].shape))
        return self.model(features)


def _features(model, columns):
    return [model.preprocess(texts) for texts in columns]


def _per_column(model, columns):
    return [model(features)["sentence_embedding"] for features in _features(model, columns)]


@pytest.mark.parametrize("pass_cost", [0, 64, 10**9])
def test_bucketed_embeddings_and_gradients_equal_one_pass_per_column(tiny_qwen_causal, monkeypatch, pass_cost):
    monkeypatch.setitem(_forward.PASS_COST_TOKENS, "cpu", pass_cost)
    model = load_model(str(tiny_qwen_causal))
    model.eval()  # no dropout: the two paths must agree row for row
    counting = _CountingModel(model)

    ours = embed_columns(counting, _features(model, TEXTS))
    ours_loss = sum((e * torch.arange(1, e.shape[1] + 1)).sum() for e in ours)
    ours_grads = torch.autograd.grad(ours_loss, list(model.parameters()))
    reference = _per_column(model, TEXTS)
    ref_loss = sum((e * torch.arange(1, e.shape[1] + 1)).sum() for e in reference)
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))

    assert [e.shape for e in ours] == [e.shape for e in reference]
    for got, want in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    for got, want in zip(ours_grads, ref_grads, strict=True):  # float rounding, relative to each gradient's scale
        assert (got - want).abs().max() <= 1e-4 * want.abs().max() + 1e-7
    padded = sum(rows * width for rows, width in counting.shapes)
    per_column = sum(f["input_ids"].numel() for f in _features(model, TEXTS))
    if pass_cost == 0:
        assert len(counting.shapes) > 1 and padded < per_column  # split where lengths differ
    if pass_cost == 10**9:
        assert len(counting.shapes) == 1  # one pass for all nine texts


def test_right_padded_model_with_token_type_ids(minilm_dir, monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setitem(_forward.PASS_COST_TOKENS, "cpu", 0)
    model = SentenceTransformer(str(minilm_dir), device="cpu")
    model.eval()
    features = _features(model, TEXTS)
    assert "token_type_ids" in features[0]
    with torch.no_grad():
        ours = embed_columns(model, features)
        reference = _per_column(model, TEXTS)
    for got, want in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_features_that_are_not_token_batches_take_sentence_transformers_path():
    class Table(torch.nn.Module):
        def forward(self, features):
            return {"sentence_embedding": features["emb"] * 2}

    columns = [{"emb": torch.ones(2, 3)}, {"emb": torch.zeros(2, 3)}]
    out = embed_columns(Table(), columns)
    assert [e.tolist() for e in out] == [[[2.0] * 3] * 2, [[0.0] * 3] * 2]


def test_mixed_padding_sides_fall_back():
    ids = torch.tensor([[1, 2, 0], [0, 3, 4]])  # one row padded right, one left: cannot be re-cut safely
    mask = (ids != 0).long()
    assert _forward._token_batches([{"input_ids": ids, "attention_mask": mask}]) is None


def test_an_unpadded_column_joins_either_padding_side():
    right = torch.tensor([[5, 6, 0], [7, 0, 0]])
    full = torch.tensor([[1, 2], [3, 4]])
    columns = [{"input_ids": t, "attention_mask": (t != 0).long()} for t in (full, right)]
    assert _forward._token_batches(columns)[1] == "right"
    assert _forward._token_batches(columns[:1])[1] == "left"
