"""The tokenise-once cache (``st_qwen3emb/training/tokenize_once.py``): batches equal ``model.preprocess``'s, tensor
for tensor, while each text is tokenised once."""

from __future__ import annotations

import random

import pytest
import torch

from st_qwen3emb import load_model
from st_qwen3emb.training.tokenize_once import TokenCache

WORDS = "the a man woman plays guitar piano dog runs fast slowly under bright sky river bank".split()


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25))) for _ in range(n)]


class _Counting:
    def __init__(self, preprocess):
        self.preprocess = preprocess
        self.texts = 0

    def __call__(self, inputs, **kwargs):
        self.texts += len(inputs)
        return self.preprocess(inputs, **kwargs)


def _assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype and torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


def _check(model, prompts=(None,), max_length=None) -> _Counting:
    counting = _Counting(model.preprocess)
    cache = TokenCache(counting, model.tokenizer)
    pool = _texts(0, 40)
    rng = random.Random(1)
    kwargs = {} if max_length is None else {"max_length": max_length}
    for _epoch in range(3):
        for prompt in prompts:
            for _ in range(4):
                batch = rng.sample(pool, 8) + rng.sample(pool, 2)  # duplicates inside a batch too
                _assert_same(cache(batch, prompt=prompt, **kwargs), model.preprocess(batch, prompt=prompt, **kwargs))
    assert cache.hits > 0
    return counting


def test_qwen_left_padding_with_prompts_and_eos(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    assert model.tokenizer.padding_side == "left"
    counting = _check(model, prompts=(None, "Instruct: Retrieve\nQuery:"))
    # 40 distinct texts per prompt, plus the first batch of each prompt built both ways: far fewer than 3 epochs' worth.
    assert counting.texts <= 2 * 40 + 2 * 10 < 3 * 2 * 4 * 10


def test_truncation_keeps_the_final_eos(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    _check(model, max_length=6)


def test_right_padding_and_token_type_ids(minilm_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    assert "token_type_ids" in model.preprocess(["a b"])
    _check(model)


def test_non_text_inputs_and_unknown_options_go_to_preprocess(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    calls = []

    def preprocess(inputs, **kwargs):
        calls.append((list(inputs), kwargs))
        return {"input_ids": torch.zeros(len(inputs), 1, dtype=torch.long)}

    cache = TokenCache(preprocess, model.tokenizer)
    cache([["a", "b"]])  # a pair, not a string
    cache(["a"], padding="max_length")
    assert len(calls) == 2 and not cache.rows


def test_a_batch_that_cannot_be_rebuilt_turns_the_cache_off(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))

    def padded_to_eight(inputs, **kwargs):  # pads to a multiple of 8: not what the cache would rebuild
        return model.tokenizer(list(inputs), padding=True, pad_to_multiple_of=8, return_tensors="pt")

    cache = TokenCache(padded_to_eight, model.tokenizer)
    texts = _texts(3, 5)
    for _ in range(2):
        _assert_same(cache(texts), padded_to_eight(texts))
    assert cache.layouts[(None, None, None)] is None and cache.hits == 0


@pytest.mark.parametrize("loss_type", ["cosine_similarity", "infonce"])
def test_training_uses_the_cache(tiny_qwen_st, tmp_path, loss_type, monkeypatch):
    import json

    from st_qwen3emb.config import parse_args
    from st_qwen3emb.training import tokenize_once, train

    data = tmp_path / "data.jsonl"
    rows = _texts(5, 12)
    with open(data, "w") as f:
        for i in range(0, 12, 2):
            record = {"query": rows[i], "response": rows[i + 1]}
            if loss_type == "cosine_similarity":
                record["label"] = 0.5
            f.write(json.dumps(record) + "\n")
    caches = []
    original = tokenize_once.cache_tokenisation
    monkeypatch.setattr(tokenize_once, "cache_tokenisation", lambda t, m: caches.append(original(t, m)) or caches[-1])
    train(parse_args([
        "--model", str(tiny_qwen_st), "--dataset", str(data), "--loss_type", loss_type, "--output_dir",
        str(tmp_path / "out"), "--num_train_epochs", "2", "--per_device_train_batch_size", "2",
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]))
    assert len(caches) == 1 and caches[0] is not None
    assert caches[0].hits > 0  # the second epoch came from the cache
