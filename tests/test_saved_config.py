"""A saved model's config.json keeps the base's token ids (and every other key but the dtype): after training,
after a second fine-tune from the first one's final/, after export and after a LoRA merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from st_qwen3emb import protocol
from st_qwen3emb.cli.export import main as export_main
from st_qwen3emb.cli.sft import main as sft_main

ROWS = [
    ("A man is playing a guitar.", "A person plays guitar.", 0.84),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.1),
    ("Kids are playing football.", "Children play soccer.", 0.92),
    ("The stock market fell today.", "Shares dropped sharply.", 0.76),
]
# Facts about the written files, not the model: the only keys a saved config may change.
FILE_FACTS = ("dtype", "torch_dtype", "transformers_version")


@pytest.fixture(scope="module")
def sts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sts.jsonl"
    path.write_text("".join(json.dumps({"query": a, "response": b, "label": s}) + "\n" for a, b, s in ROWS))
    return path


def _sft(model: Path, data: Path, out: Path, *extra: str) -> Path:
    argv = ["--model", str(model), "--dataset", str(data), "--output_dir", str(out), "--loss_type", "cosine_similarity",
            "--per_device_train_batch_size", "2", "--max_steps", "2", "--learning_rate", "1e-2",
            "--dataloader_num_workers", "0", "--disable_tqdm", "true", *extra]  # fmt: skip
    assert sft_main(argv) == 0
    (run,) = [p for p in out.iterdir() if p.name.startswith("v")]
    return run / "final"


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def assert_keeps_base(saved: dict, base: dict) -> None:
    changed = {k: (v, saved.get(k, "<absent>")) for k, v in base.items() if k not in FILE_FACTS and saved.get(k, "<absent>") != v}
    assert not changed, f"keys changed from the base (base, saved): {changed}"
    added = {k: saved[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k not in base and saved[k] is not None}
    assert not added, f"token ids the base does not have: {added}"


def _endoftext_row(final: Path, tokenizer_dir: Path):
    from transformers import AutoTokenizer

    row = AutoTokenizer.from_pretrained(str(tokenizer_dir)).convert_tokens_to_ids(protocol.EOS_TOKEN)
    (key,) = [k for k in load_file(str(final / "model.safetensors")) if k.endswith("embed_tokens.weight")]
    return load_file(str(final / "model.safetensors"))[key], row


@pytest.fixture(scope="module")
def stage1(tiny_qwen_causal, sts_file, tmp_path_factory) -> Path:
    return _sft(tiny_qwen_causal, sts_file, tmp_path_factory.mktemp("stage1"), "--train_type", "full")


def test_full_finetune_keeps_the_base_config(stage1, tiny_qwen_causal):
    assert_keeps_base(_config(stage1), _config(tiny_qwen_causal))
    checkpoint = next(stage1.parent.glob("checkpoint-*"))
    assert "pad_token_id" not in _config(checkpoint) or _config(checkpoint)["pad_token_id"] is None


def test_second_finetune_trains_the_pooled_token_row(stage1, sts_file, tmp_path):
    """<|endoftext|> is the token the embedding is read from: a padding_idx there would freeze its row."""
    from sentence_transformers import SentenceTransformer

    stage2 = _sft(stage1, sts_file, tmp_path / "stage2", "--train_type", "full")
    before, row = _endoftext_row(stage1, stage1)
    after, _ = _endoftext_row(stage2, stage1)
    moved = (after - before).abs().max(dim=1).values
    assert moved.max() > 0 and moved[row] > 0, "the <|endoftext|> row did not move in the second fine-tune"
    assert SentenceTransformer(str(stage2), device="cpu")[0].model.embed_tokens.padding_idx is None
    assert_keeps_base(_config(stage2), _config(stage1))


def test_export_keeps_the_checkpoint_config(stage1, tiny_qwen_causal, tmp_path):
    out = tmp_path / "exported"
    assert export_main(["--model", str(stage1), "--output_dir", str(out)]) == 0
    assert_keeps_base(_config(out), _config(stage1))
    assert_keeps_base(_config(out), _config(tiny_qwen_causal))


def test_lora_merge_keeps_the_base_config(tiny_qwen_causal, sts_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    final = _sft(tiny_qwen_causal, sts_file, tmp_path / "lora", "--train_type", "lora", "--lora_rank", "4")
    out = tmp_path / "merged"
    assert export_main(["--adapters", str(final), "--merge_lora", "true", "--output_dir", str(out)]) == 0
    assert_keeps_base(_config(out), _config(tiny_qwen_causal))
    assert SentenceTransformer(str(out), device="cpu")[0].model.embed_tokens.padding_idx is None
