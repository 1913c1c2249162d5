"""The Qwen3 reranker: upstream-exact scores, portable saves, the seq-cls export, losses, data and training."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from st_qwen3emb import protocol
from st_qwen3emb.reranker import load_reranker

QUERY_DOCS = [
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("What is the capital of China?", "Gravity is a force that attracts two bodies towards each other."),
    ("Explain gravity", "Gravity is a force that attracts two bodies towards each other. It gives weight to physical "
                        "objects and is responsible for the movement of planets around the sun."),
    ("Explain gravity", "ok"),
]


# --- the reference: the Qwen3-Reranker README's plain-transformers recipe, written out here -------------
REF_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
)
REF_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_instruction(instruction, query, doc):
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def reference_scores(path, pairs, instruction=None, max_length=8192):
    """``compute_logits(process_inputs(pairs))`` of the README, returning (probabilities, z_yes - z_no)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix_tokens = tokenizer.encode(REF_PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(REF_SUFFIX, add_special_tokens=False)

    def process_inputs(texts):
        inputs = tokenizer(
            texts, padding=False, truncation="longest_first", return_attention_mask=False,
            max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        return tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)

    @torch.no_grad()
    def compute_logits(inputs):
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        stacked = torch.stack([false_vector, true_vector], dim=1)
        log_probs = torch.nn.functional.log_softmax(stacked, dim=1)
        return log_probs[:, 1].exp().numpy(), (true_vector - false_vector).numpy()

    texts = [format_instruction(instruction, q, d) for q, d in pairs]
    return compute_logits(process_inputs(texts))


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory):
    """A tiny random ``Qwen3ForCausalLM`` reranker with the real Qwen3 tokenizer.

    The published Qwen3-Reranker tokenizer adds no special tokens (its post-processor is plain ByteLevel,
    unlike the updated Qwen3-Embedding tokenizer that appends ``<|endoftext|>``), which is what the README
    recipe's ``tokenizer(pairs)`` relies on; the fixture reproduces that.
    """
    from tokenizers import processors

    from st_qwen3emb.fixtures import build_qwen3_checkpoint, load_skeleton_tokenizer, skeleton_dir

    if skeleton_dir() is None:
        pytest.skip("the Qwen3 skeleton tokenizer (../shared) is absent; the reranker tests need the real vocabulary")
    tokenizer = load_skeleton_tokenizer()
    tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return build_qwen3_checkpoint(tmp_path_factory.mktemp("tiny_reranker"), tokenizer=tokenizer, seed=3)


def raw_scores(model, pairs, **kwargs):
    return model.predict(pairs, activation_fn=torch.nn.Identity(), **kwargs)


# --- parity with the README recipe -------------------------------------------------------------------
def test_template_renders_like_protocol(tiny_reranker):
    model = load_reranker(str(tiny_reranker))
    features = model.preprocess([QUERY_DOCS[0]])
    text = model.tokenizer.decode(features["input_ids"][0])
    assert text == REF_PREFIX + format_instruction(None, *QUERY_DOCS[0]) + REF_SUFFIX
    assert text == protocol.format_reranker_pair(*QUERY_DOCS[0])


def test_matches_official_recipe(tiny_reranker):
    model = load_reranker(str(tiny_reranker))
    expected_prob, expected_logit = reference_scores(tiny_reranker, QUERY_DOCS)
    np.testing.assert_allclose(model.predict(QUERY_DOCS), expected_prob, atol=1e-5)
    np.testing.assert_allclose(raw_scores(model, QUERY_DOCS), expected_logit, atol=1e-5)
    # batch invariance: left padding keeps the last position real
    alone = np.array([model.predict([pair])[0] for pair in QUERY_DOCS])
    np.testing.assert_allclose(alone, expected_prob, atol=1e-5)


def test_custom_instruction_per_model_and_per_call(tiny_reranker):
    instruction = "Judge whether the passage answers the question"
    expected_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS, instruction=instruction)
    model = load_reranker(str(tiny_reranker), instruction=instruction)
    np.testing.assert_allclose(model.predict(QUERY_DOCS), expected_prob, atol=1e-5)
    default = load_reranker(str(tiny_reranker))
    np.testing.assert_allclose(default.predict(QUERY_DOCS, prompt=instruction), expected_prob, atol=1e-5)
    default_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS)
    assert not np.allclose(default_prob, expected_prob, atol=1e-6)


def test_truncation_keeps_template_suffix(tiny_reranker):
    model = load_reranker(str(tiny_reranker), max_length=90)
    long_doc = " ".join(["gravity attracts bodies"] * 60)
    pairs = [("Explain gravity", long_doc), QUERY_DOCS[0]]
    expected_prob, _ = reference_scores(tiny_reranker, pairs, max_length=90)
    np.testing.assert_allclose(model.predict(pairs), expected_prob, atol=1e-5)
    assert model.preprocess(pairs)["input_ids"].shape[1] == 90


def test_rejects_non_qwen(minilm_dir):
    from st_qwen3emb.model import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a Qwen3 model"):
        load_reranker(str(minilm_dir))


# --- portable save ---------------------------------------------------------------------------------------
PLAIN_CE_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from sentence_transformers import CrossEncoder
    model = CrossEncoder(sys.argv[1])
    pairs = json.loads(sys.argv[2])
    out = {"scores": model.predict(pairs).tolist(), "modules": sorted(type(m).__module__ for m in model)}
    try:
        import st_qwen3emb  # noqa: F401
        out["blocked"] = False
    except ImportError:
        out["blocked"] = True
    print("RESULT" + json.dumps(out))
    """
)


def predict_in_plain_process(folder, pairs, tmp_path):
    """Scores from a fresh Python in which st_qwen3emb cannot be imported (plain sentence-transformers)."""
    from tests.test_model import BLOCKED_IMPORT_SCRIPT

    # Reuse the import blocker of the embedding test, with a CrossEncoder body instead of the encoder one.
    blocker = BLOCKED_IMPORT_SCRIPT.split("from sentence_transformers")[0]
    script = tmp_path / "plain_ce.py"
    script.write_text(blocker + PLAIN_CE_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), json.dumps(pairs)],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    assert result["blocked"] is True
    assert all(m.startswith("sentence_transformers.") for m in result["modules"])
    return np.array(result["scores"])


def test_portable_save_scores_identically(tiny_reranker, tmp_path):
    instruction = "Find the passage that answers"
    model = load_reranker(str(tiny_reranker), instruction=instruction)
    folder = tmp_path / "saved"
    model.save(str(folder))
    assert (folder / "chat_template.jinja").is_file()
    assert not any(p.suffix == ".bin" for p in folder.rglob("*"))
    expected_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS, instruction=instruction)
    np.testing.assert_allclose(predict_in_plain_process(folder, QUERY_DOCS, tmp_path), expected_prob, atol=1e-5)
    reloaded = load_reranker(str(folder))
    np.testing.assert_allclose(reloaded.predict(QUERY_DOCS), expected_prob, atol=1e-5)
