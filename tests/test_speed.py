"""The training speed-ups keep the math: same gradients, same weights after optimizer steps."""

from __future__ import annotations

import copy

import pytest
import torch

from st_qwen3emb import load_model
from st_qwen3emb.losses import build_loss
from st_qwen3emb.training.speed import find_transformer, row_embedding_grad

BATCHES = [
    (["A man plays a guitar.", "Kids run"], ["Someone is playing music on a guitar.", "Children are running"], [0.9, 0.7]),
    (["The cat sleeps", "A plane takes off."], ["A dog barks loudly at night", "An aeroplane is taking off."], [0.1, 1.0]),
    (["Stocks fell today"], ["The market went down today, analysts said."], [0.8]),
]


def _train(model, row_grads: bool, steps=((0, 1), (2,))):
    """Optimizer steps over micro-batches (gradient accumulation), returning per-step grads and final weights."""
    loss_fn = build_loss("cosine_similarity", model)
    # SGD: Adam's first steps are ~lr * sign(grad), which turns float-rounding noise in near-zero gradients into
    # lr-sized weight differences; the gradients themselves are compared exactly at every step.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.01)
    grads = []
    with row_embedding_grad(model, enabled=row_grads) as active:
        assert active is row_grads
        for micro_batches in steps:
            for i in micro_batches:
                anchors, positives, labels = BATCHES[i]
                features = [model.preprocess(anchors), model.preprocess(positives)]
                loss_fn(features, torch.tensor(labels)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return grads, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_row_embedding_grad_equals_dense(tiny_qwen_causal):
    base = load_model(str(tiny_qwen_causal))
    dense_grads, dense_weights = _train(copy.deepcopy(base), row_grads=False)
    row_grads, row_weights = _train(copy.deepcopy(base), row_grads=True)
    for dense, rows in zip(dense_grads, row_grads, strict=True):
        assert dense.keys() == rows.keys()
        for name in dense:
            torch.testing.assert_close(rows[name], dense[name], atol=1e-7, rtol=1e-5, msg=name)
    for name in dense_weights:
        torch.testing.assert_close(row_weights[name], dense_weights[name], atol=1e-6, rtol=1e-5, msg=name)
    moved = (dense_weights["0.model.embed_tokens.weight"] - find_transformer(base).embed_tokens.weight).abs()
    assert moved.max() > 1e-3  # the check compares real training, not two untouched models


def test_module_is_restored_after_training(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    embedding = find_transformer(model).get_input_embeddings()
    keys = set(model.state_dict())
    with row_embedding_grad(model) as active:
        assert active and "forward" in vars(embedding)
    assert "forward" not in vars(embedding)
    assert set(model.state_dict()) == keys


@pytest.mark.parametrize("kwargs", [{"enabled": False}, {"world_size": 2}, {"deepspeed": "zero2"}])
def test_fast_path_stays_off_where_it_is_not_exact(tiny_qwen_causal, kwargs):
    model = load_model(str(tiny_qwen_causal))
    with row_embedding_grad(model, **kwargs) as active:
        assert not active


def test_frozen_embedding_is_left_alone(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    find_transformer(model).get_input_embeddings().weight.requires_grad_(False)
    with row_embedding_grad(model) as active:
        assert not active
