"""load_model follows the official Qwen3-Embedding protocol, and what it saves loads anywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _plain_process import run_plain

from st_qwen3emb import ModelLoadError, load_model, protocol

QUERIES = ["What is the capital of China?", "Explain gravity"]
DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects and "
    "is responsible for the movement of planets around the sun.",
    "ok",
]
TASK = protocol.DEFAULT_RETRIEVAL_INSTRUCTION


# --- the reference: the Qwen3-Embedding README's plain-transformers recipe, written out here ---------
def last_token_pool(last_hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size), sequence_lengths]


def get_detailed_instruct(task_description: str, query: str) -> str:
    return f"Instruct: {task_description}\nQuery:{query}"


def reference_embeddings(path, texts, max_length=8192):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    model = AutoModel.from_pretrained(str(path)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch)
    return F.normalize(last_token_pool(outputs.last_hidden_state, batch["attention_mask"]), p=2, dim=1).numpy()


# --- parity -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["bare", "st"])
def test_matches_official_recipe(source, tiny_qwen_causal, tiny_qwen_st):
    path = tiny_qwen_causal if source == "bare" else tiny_qwen_st
    model = load_model(str(path))
    expected_q = reference_embeddings(tiny_qwen_causal, [get_detailed_instruct(TASK, q) for q in QUERIES])
    expected_d = reference_embeddings(tiny_qwen_causal, DOCUMENTS)
    np.testing.assert_allclose(model.encode_query(QUERIES), expected_q, atol=1e-5)
    np.testing.assert_allclose(model.encode_document(DOCUMENTS), expected_d, atol=1e-5)


def test_qwen3model_checkpoint_is_pooled_on_last_token(tmp_path):
    from st_qwen3emb.fixtures import build_qwen3_checkpoint

    path = build_qwen3_checkpoint(tmp_path / "qwen3model", causal_lm=False, seed=1)
    model = load_model(str(path))
    assert model[1].pooling_mode == "lasttoken"
    np.testing.assert_allclose(model.encode(DOCUMENTS), reference_embeddings(path, DOCUMENTS), atol=1e-5)


def test_protocol_pieces(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    assert model.tokenizer.padding_side == "left"
    assert model.max_seq_length == protocol.DEFAULT_MAX_SEQ_LENGTH
    assert model.similarity_fn_name == "cosine"
    assert model.prompts["query"] == "Instruct: " + TASK + "\nQuery:"
    assert model.prompts["document"] == ""
    assert model.prompts["STS"] == "Instruct: Retrieve semantically similar text\nQuery:"
    features = model.preprocess(["a", "a much longer sentence than the first one"])
    eos_id = model.tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    assert (features["input_ids"][:, -1] == eos_id).all()  # left padding: every row ends in EOS
    assert features["attention_mask"][0, 0] == 0  # the short row is padded on the left


def test_truncation_keeps_final_eos(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal), max_seq_length=5)
    features = model.preprocess(["one two three four five six seven eight nine ten eleven"])
    eos_id = model.tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    assert features["input_ids"].shape[1] == 5
    assert features["input_ids"][0, -1] == eos_id


def test_custom_query_instruction(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal), query_instruction="Find the matching title")
    assert model.prompts["query"] == "Instruct: Find the matching title\nQuery:"
    expected = reference_embeddings(tiny_qwen_causal, [get_detailed_instruct("Find the matching title", QUERIES[0])])
    np.testing.assert_allclose(model.encode_query(QUERIES[:1]), expected, atol=1e-5)


def test_batch_invariance(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    together = model.encode(DOCUMENTS, batch_size=8)
    alone = np.stack([model.encode([d])[0] for d in DOCUMENTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    model.tokenizer.padding_side = "right"  # last-token pooling reads the attention mask either way
    np.testing.assert_allclose(model.encode(DOCUMENTS, batch_size=8), together, atol=1e-5)


# --- the EOS fix ----------------------------------------------------------------------------------------
def test_tokenizer_without_eos_is_fixed_and_saved(tiny_qwen_causal, tmp_path):
    import shutil

    from tokenizers import processors
    from transformers import AutoTokenizer

    old = tmp_path / "old_revision"
    shutil.copytree(tiny_qwen_causal, old)
    tokenizer = AutoTokenizer.from_pretrained(str(old))
    tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.save_pretrained(str(old))
    eos_id = tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)  # 151643 with the real tokenizer
    assert AutoTokenizer.from_pretrained(str(old))("test")["input_ids"][-1] != eos_id

    model = load_model(str(old))
    np.testing.assert_allclose(model.encode(DOCUMENTS), reference_embeddings(tiny_qwen_causal, DOCUMENTS), atol=1e-5)
    saved = tmp_path / "saved"
    model.save(str(saved))
    assert AutoTokenizer.from_pretrained(str(saved))("test")["input_ids"][-1] == eos_id


# --- portable save ----------------------------------------------------------------------------------------
def encode_in_plain_process(folder, texts, tmp_path):
    """Embeddings from a fresh Python in which st_qwen3emb cannot be imported (plain sentence-transformers)."""
    body = """
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[1])
    texts = json.loads(sys.argv[2])
    out = {"query": model.encode_query(texts).tolist(), "document": model.encode_document(texts).tolist()}
    """
    return run_plain(body, folder, texts, tmp_path, "plain_load")


def test_portable_save(tiny_qwen_causal, tmp_path):
    model = load_model(str(tiny_qwen_causal))
    folder = tmp_path / "portable"
    model.save(str(folder))
    assert not any(p.suffix == ".bin" for p in folder.rglob("*"))
    assert (folder / "model.safetensors").is_file()
    texts = QUERIES + DOCUMENTS
    result = encode_in_plain_process(folder, texts, tmp_path)
    np.testing.assert_allclose(np.array(result["query"]), model.encode_query(texts), atol=1e-5)
    np.testing.assert_allclose(np.array(result["document"]), model.encode_document(texts), atol=1e-5)


# --- other models and bad input ----------------------------------------------------------------------------
def test_non_qwen_model_passes_through(minilm_dir):
    from sentence_transformers import SentenceTransformer

    ours = load_model(str(minilm_dir))
    plain = SentenceTransformer(str(minilm_dir))
    assert ours.prompts == plain.prompts
    assert ours.max_seq_length == plain.max_seq_length
    np.testing.assert_allclose(ours.encode(DOCUMENTS), plain.encode(DOCUMENTS), atol=1e-6)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "no" / "such" / "model"))


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(str(tmp_path))


def test_qwen_only_options_on_other_models(minilm_dir):
    with pytest.raises(ModelLoadError, match="not a Qwen3 model"):
        load_model(str(minilm_dir), query_instruction="Find similar text")
    with pytest.raises(ModelLoadError, match="not a Qwen3 model"):
        load_model(str(minilm_dir), model_type="qwen3_emb")


def test_fallback_tokenizer_model(tmp_path):
    """The core protocol also holds on the tokenizer a fresh clone builds without ../shared."""
    from st_qwen3emb.fixtures import build_fallback_tokenizer, build_qwen3_checkpoint

    tokenizer = build_fallback_tokenizer(tmp_path / "tok")
    path = build_qwen3_checkpoint(tmp_path / "model", tokenizer=tokenizer)
    model = load_model(str(path))
    eos_id = tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    assert (model.preprocess(DOCUMENTS)["input_ids"][:, -1] == eos_id).all()
    np.testing.assert_allclose(model.encode(DOCUMENTS), reference_embeddings(path, DOCUMENTS), atol=1e-5)


def test_empty_query_instruction_means_bare_queries(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal), query_instruction="")
    assert model.prompts["query"] == ""
    np.testing.assert_allclose(model.encode_query(QUERIES), reference_embeddings(tiny_qwen_causal, QUERIES), atol=1e-5)


# --- a model folder that names code of its own ------------------------------------------------------


@pytest.fixture
def custom_class_folder(tiny_qwen_st, tmp_path):
    import json
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny_qwen_st, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "evil_package.pooling.EvilPooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def test_custom_module_class_is_a_one_line_error(custom_class_folder):
    with pytest.raises(ModelLoadError) as info:
        load_model(str(custom_class_folder))
    message = str(info.value)
    assert str(custom_class_folder / "modules.json") in message and "evil_package.pooling.EvilPooling" in message
    assert "trust_remote_code" in message and "\n" not in message


def test_custom_module_class_exits_2_from_every_command(custom_class_folder, tmp_path, capsys):
    from st_qwen3emb.cli.eval import main as eval_main
    from st_qwen3emb.cli.export import main as export_main
    from st_qwen3emb.cli.sft import main as sft_main
    from st_qwen3emb.data import default_sts_sample_path

    sample = str(default_sts_sample_path())
    commands = [
        (sft_main, ["--model", str(custom_class_folder), "--dataset", sample, "--loss_type", "cosine_similarity",
                    "--output_dir", str(tmp_path / "out")]),
        (eval_main, ["sts", "--model", str(custom_class_folder), "--dataset", sample,
                     "--output", str(tmp_path / "sts.json")]),
        (export_main, ["--model", str(custom_class_folder), "--output_dir", str(tmp_path / "export")]),
    ]
    for main, argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "EvilPooling" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "export").exists()


# --- huge texts: cut to a character budget before tokenising --------------------------------------------


def test_a_multi_megabyte_text_is_cut_before_tokenising(tiny_qwen_causal, monkeypatch):
    import time

    model = load_model(str(tiny_qwen_causal), max_seq_length=64)
    tokenizer = model.tokenizer
    huge = "The quick brown fox jumps over the lazy dog. " * 90_000  # about 4 MB
    generous = huge[:100_000]  # far more than 64 tokens
    reference = model.encode([generous], prompt="", convert_to_tensor=True)

    seen = []
    original_call = type(tokenizer).__call__

    def spy(self, *args, **kwargs):
        texts = kwargs.get("text", args[0] if args else None)
        seen.extend(len(t) for t in (texts if isinstance(texts, list) else [texts]) if isinstance(t, str))
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", spy)
    start = time.perf_counter()
    embedding = model.encode([huge], prompt="", convert_to_tensor=True)
    assert time.perf_counter() - start < 10
    assert seen and max(seen) < len(generous) < len(huge) // 40  # the tokenizer never saw the 4 MB
    torch.testing.assert_close(embedding, reference)
    ids = model.preprocess([huge])["input_ids"][0]
    assert len(ids) == 64 and ids[-1].item() == tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
