"""Structurally faithful random Qwen3 models for tests and benchmarks (no weights need downloading).

``build_qwen3_checkpoint`` shrinks the real Qwen3-Embedding-0.6B config from the skeleton folder
(``shared/models/qwen3-embedding-0.6b-skeleton``: config, tokenizer and sentence-transformers files, no
weights), random-initialises it with a fixed seed and saves a bare transformers checkpoint next to the
real tokenizer. Where the skeleton is absent (a fresh clone), ``build_fallback_tokenizer`` makes a small
byte-level BPE tokenizer with the same special tokens and the same ``<|endoftext|>``-appending rule, so
the core test suite still runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from st_qwen3emb import protocol

SKELETON_ENV = "ST_QWEN3EMB_SKELETON"
_DEFAULT_SKELETON = Path(__file__).resolve().parents[2] / "shared" / "models" / "qwen3-embedding-0.6b-skeleton"

_FALLBACK_CORPUS = (
    "A man is playing a guitar. A woman is slicing an onion. The cat sits on the mat. Instruct: Query: "
    "Retrieve semantically similar text. Given a web search query, retrieve relevant passages that answer "
    "the query. The quick brown fox jumps over the lazy dog. Children are playing in the park near a river. "
    "0123456789 yes no Judge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\". <Instruct>: <Query>: <Document>: think"
)


def skeleton_dir() -> Path | None:
    """The Qwen3-Embedding-0.6B skeleton folder, or ``None`` when it is not on this machine."""
    path = Path(os.environ.get(SKELETON_ENV, _DEFAULT_SKELETON))
    return path if (path / "config.json").is_file() and (path / "tokenizer.json").is_file() else None


def build_fallback_tokenizer(out_dir: str | Path):
    """A small Qwen-like fast tokenizer (byte-level BPE, ``<|endoftext|>`` appended, left padding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = [protocol.EOS_TOKEN, "<|im_start|>", protocol.CHAT_EOS_TOKEN]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([_FALLBACK_CORPUS] * 4, trainer=trainer)
    eos_id = tok.token_to_id(protocol.EOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {protocol.EOS_TOKEN}:0",
        pair=f"$A:0 {protocol.EOS_TOKEN}:0 $B:1 {protocol.EOS_TOKEN}:1",
        special_tokens=[(protocol.EOS_TOKEN, eos_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=protocol.CHAT_EOS_TOKEN,
        pad_token=protocol.EOS_TOKEN,
        padding_side=protocol.PADDING_SIDE,
        model_max_length=32768,
    )
    fast.save_pretrained(str(out_dir))
    return fast


def load_skeleton_tokenizer():
    from transformers import AutoTokenizer

    skeleton = skeleton_dir()
    if skeleton is None:
        raise FileNotFoundError("the Qwen3 skeleton folder is not on this machine")
    return AutoTokenizer.from_pretrained(str(skeleton))


def build_qwen3_checkpoint(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    seed: int = 0,
    causal_lm: bool = True,
    tokenizer=None,
) -> Path:
    """Save a random Qwen3 checkpoint (``Qwen3ForCausalLM`` by default) with a tokenizer into ``out_dir``.

    The config is the skeleton's with the sizes shrunk (or, without the skeleton, the same fields written
    here); ``tokenizer`` defaults to the skeleton's real tokenizer, else the fallback tokenizer.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_dir()
    if tokenizer is None:
        tokenizer = load_skeleton_tokenizer() if skeleton is not None else build_fallback_tokenizer(out)
    if skeleton is not None:
        fields = json.loads((skeleton / "config.json").read_text())
    else:
        fields = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000, "tie_word_embeddings": True,
                  "max_position_embeddings": 32768, "attention_bias": False}
    eos_id = tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    for key in ("architectures", "transformers_version", "layer_types", "torch_dtype"):
        fields.pop(key, None)
    fields.update(
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=num_layers,
        max_window_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        vocab_size=max(fields.get("vocab_size", 0), len(tokenizer)) if skeleton is not None else len(tokenizer),
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        # no pad_token_id, as upstream: it would make <|endoftext|> the embedding's padding_idx (a zero, untrained row)
        pad_token_id=None,
        dtype="float32",
    )
    config = Qwen3Config(**fields)
    torch.manual_seed(seed)
    model = (Qwen3ForCausalLM if causal_lm else Qwen3Model)(config)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.padding_side = protocol.PADDING_SIDE
    tokenizer.save_pretrained(str(out))
    return out
