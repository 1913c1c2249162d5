"""LoRA checkpoints load with the adapter applied, and the merged export reproduces them in plain sentence-transformers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from test_model import DOCUMENTS, QUERIES, encode_in_plain_process

from st_qwen3emb import export as export_mod
from st_qwen3emb import load_model, lora, protocol
from st_qwen3emb.cli.export import main
from st_qwen3emb.export import ExportError, export, probe_embeddings

TEXTS = QUERIES + DOCUMENTS
PAIRS = (
    ["a man plays a guitar", "a woman slices an onion", "the cat sits on the mat", "children play in the park"],
    ["someone makes music", "cooking vegetables", "a pet rests on a rug", "kids outside near a river"],
)


def _train_lora(model, steps: int = 5, lr: float = 5e-3) -> None:
    """A few in-batch contrastive steps: enough to move every embedding measurably."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(steps):
        a = model(model.preprocess(PAIRS[0]))["sentence_embedding"]
        b = model(model.preprocess(PAIRS[1]))["sentence_embedding"]
        loss = torch.nn.functional.cross_entropy(a @ b.T * 20, torch.arange(len(PAIRS[0])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def trained(tiny_qwen_causal, tmp_path_factory):
    """A LoRA run: run_dir/args.json and run_dir/checkpoint-5 (adapter + sentence-transformers files)."""
    model = load_model(str(tiny_qwen_causal))
    lora.add_lora(model, rank=4, alpha=8, dropout=0.0)
    _train_lora(model)
    run_dir = tmp_path_factory.mktemp("run") / "v0-20260101-000000"
    checkpoint = run_dir / "checkpoint-5"
    model.save(str(checkpoint))
    (run_dir / "args.json").write_text(json.dumps({"model": str(tiny_qwen_causal), "train_type": "lora"}))
    return {
        "checkpoint": checkpoint,
        "query": model.encode_query(TEXTS),
        "document": model.encode_document(TEXTS),
        "probe": probe_embeddings(model),
        "model": model,
    }


@pytest.fixture(scope="module")
def merged(trained):
    return export(trained["checkpoint"])


def _copy_checkpoint(trained, tmp_path, name="ckpt"):
    dst = tmp_path / name
    shutil.copytree(trained["checkpoint"], dst)
    return dst


# --- the adapter checkpoint ------------------------------------------------------------------------
def test_add_lora_targets_qwen3_block_linears(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    lora.add_lora(model)
    config = model[0].model.peft_config["default"]
    assert set(config.target_modules) == set(lora.QWEN3_LORA_TARGETS)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(lora.QWEN3_LORA_TARGETS) * 2  # A and B, 7 linears, 2 layers
    with pytest.raises(lora.LoraError, match="already carries"):
        lora.add_lora(model)


def test_add_lora_bad_options(tiny_qwen_causal):
    model = load_model(str(tiny_qwen_causal))
    with pytest.raises(lora.LoraError, match="rank"):
        lora.add_lora(model, rank=0)
    with pytest.raises(lora.LoraError, match="dropout"):
        lora.add_lora(model, dropout=1.5)
    with pytest.raises(lora.LoraError, match="cannot be combined"):
        lora.add_lora(model, target_modules="all-linear,q_proj")
    lora.add_lora(model, target_modules="q_proj,v_proj")
    assert set(model[0].model.peft_config["default"].target_modules) == {"q_proj", "v_proj"}


def test_add_lora_on_other_models_uses_all_linear(minilm_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    lora.add_lora(model, rank=2)
    # peft expands "all-linear" to every linear layer of the encoder (no output head in a bare BertModel)
    assert set(model[0].model.peft_config["default"].target_modules) == {"query", "key", "value", "dense"}
    assert lora.has_lora(model)


def test_portable_base_name(tmp_path, monkeypatch):
    snapshot = "/root/.cache/huggingface/hub/models--Qwen--Qwen3-Embedding-0.6B/snapshots/0123abcd"
    assert lora.portable_base_name(snapshot) == "Qwen/Qwen3-Embedding-0.6B"
    assert lora.portable_base_name("Qwen/Qwen3-Embedding-0.6B") == "Qwen/Qwen3-Embedding-0.6B"
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    assert lora.portable_base_name("base") == str((tmp_path / "base").resolve())  # relative paths are made absolute


def test_checkpoint_holds_adapter_and_loads_plain(trained, tmp_path):
    checkpoint = trained["checkpoint"]
    names = {p.name for p in checkpoint.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "modules.json", "tokenizer.json"} <= names
    assert "model.safetensors" not in names  # only the adapter, not a copy of the base weights
    config = json.loads((checkpoint / "adapter_config.json").read_text())
    assert os.path.isabs(config["base_model_name_or_path"])
    result = encode_in_plain_process(checkpoint, TEXTS, tmp_path)
    np.testing.assert_allclose(np.array(result["query"]), trained["query"], atol=1e-5)
    np.testing.assert_allclose(np.array(result["document"]), trained["document"], atol=1e-5)


def test_merge_lora_keeps_embeddings(trained, tiny_qwen_causal):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(trained["checkpoint"]), device="cpu")  # adapter injected by transformers
    assert lora.has_lora(model)
    lora.merge_lora(model)
    assert not lora.has_lora(model)
    np.testing.assert_allclose(model.encode_query(TEXTS), trained["query"], atol=1e-5)
    with pytest.raises(lora.LoraError, match="no LoRA adapter"):
        lora.merge_lora(model)

    wrapped = load_model(str(tiny_qwen_causal))  # adapter as a PeftModel (the training form)
    lora.add_lora(wrapped, rank=2)
    _train_lora(wrapped, steps=2)
    before = wrapped.encode_document(TEXTS)
    lora.merge_lora(wrapped)
    assert not lora.has_lora(wrapped)
    np.testing.assert_allclose(wrapped.encode_document(TEXTS), before, atol=1e-5)


# --- the merged export -------------------------------------------------------------------------------
def test_merged_export_in_plain_process(trained, merged, tiny_qwen_causal, tmp_path):
    assert merged == trained["checkpoint"].with_name("checkpoint-5-merged")
    result = encode_in_plain_process(merged, TEXTS, tmp_path)
    query, document = np.array(result["query"]), np.array(result["document"])
    np.testing.assert_allclose(query, trained["query"], atol=1e-5)
    np.testing.assert_allclose(document, trained["document"], atol=1e-5)
    base = load_model(str(tiny_qwen_causal))
    assert np.abs(query - base.encode_query(TEXTS)).max() > 1e-2  # the training moved the embeddings
    assert np.abs(document - base.encode_document(TEXTS)).max() > 1e-2


def test_merged_export_layout_follows_protocol(merged):
    from sentence_transformers import SentenceTransformer

    names = {p.name for p in merged.rglob("*")}
    assert not any(n.startswith("adapter_") for n in names)
    assert "model.safetensors" in names and not any(n.endswith(".bin") for n in names)
    assert not any(n.startswith(".") for n in os.listdir(merged.parent))  # no scratch folder left behind
    modules = json.loads((merged / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    pooling = json.loads((merged / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "lasttoken"
    model = SentenceTransformer(str(merged), device="cpu")
    assert model.tokenizer.padding_side == "left"
    assert model.prompts["query"] == protocol.query_prompt(protocol.DEFAULT_RETRIEVAL_INSTRUCTION)
    assert model.similarity_fn_name == "cosine"
    features = model.preprocess(DOCUMENTS)
    eos_id = model.tokenizer.convert_tokens_to_ids(protocol.EOS_TOKEN)
    assert (features["input_ids"][:, -1] == eos_id).all()
    assert features["attention_mask"][-1, 0] == 0  # the short document is padded on the left
    assert (merged / "README.md").is_file()


def test_legacy_format_loads_identically(trained, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = export(trained["checkpoint"], tmp_path / "legacy", format="legacy")
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_lasttoken"] is True and pooling["pooling_mode_mean_tokens"] is False
    assert pooling["word_embedding_dimension"] == 64
    assert json.loads((out / "sentence_bert_config.json").read_text()) == {"max_seq_length": 512, "do_lower_case": False}
    assert json.loads((out / "config.json").read_text())["rope_theta"] > 0  # transformers 4 reads this key
    model = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(model.encode_query(TEXTS), trained["query"], atol=1e-5)
    np.testing.assert_allclose(model.encode_document(TEXTS), trained["document"], atol=1e-5)


LEGACY_PYTHON = os.environ.get("ST_QWEN3EMB_LEGACY_PYTHON")


@pytest.mark.skipif(not LEGACY_PYTHON, reason="set ST_QWEN3EMB_LEGACY_PYTHON to a python with sentence-transformers<5.4")
def test_legacy_format_in_old_sentence_transformers(trained, tmp_path):
    out = export(trained["checkpoint"], tmp_path / "legacy", format="legacy")
    script = (
        "import json, sys\nfrom sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(sys.argv[1], device='cpu')\nt = json.loads(sys.argv[2])\n"
        "print('RESULT' + json.dumps({'q': m.encode(t, prompt_name='query').tolist(), "
        "'d': m.encode(t, prompt_name='document').tolist()}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([LEGACY_PYTHON, "-c", script, str(out), json.dumps(TEXTS)], capture_output=True,
                          text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))[6:])
    np.testing.assert_allclose(np.array(result["q"]), trained["query"], atol=1e-5)
    np.testing.assert_allclose(np.array(result["d"]), trained["document"], atol=1e-5)


def test_full_checkpoint_export(tiny_qwen_st, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = export(tiny_qwen_st, tmp_path / "full")
    assert out == tmp_path / "full" and (out / "model.safetensors").is_file()
    expected = load_model(str(tiny_qwen_st)).encode_query(TEXTS)
    np.testing.assert_allclose(SentenceTransformer(str(out), device="cpu").encode_query(TEXTS), expected, atol=1e-5)


def test_adapter_keyed_for_a_wrapper_model_is_rekeyed(trained, tmp_path):
    """An adapter saved from ``*ForCausalLM`` (keys ``...model.layers...``) still merges into the right layers."""
    from safetensors.torch import load_file, save_file

    ckpt = _copy_checkpoint(trained, tmp_path)
    weights = load_file(str(ckpt / "adapter_model.safetensors"))
    wrapped = {k.replace("base_model.model.", "base_model.model.model.", 1): v for k, v in weights.items()}
    save_file(wrapped, str(ckpt / "adapter_model.safetensors"))
    out = export(ckpt, tmp_path / "out")
    from sentence_transformers import SentenceTransformer

    np.testing.assert_allclose(probe_embeddings(SentenceTransformer(str(out))), trained["probe"], atol=1e-5)


# --- refusals ----------------------------------------------------------------------------------------
def test_adapter_that_does_not_fit_is_refused(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    ckpt = _copy_checkpoint(trained, tmp_path)
    weights = load_file(str(ckpt / "adapter_model.safetensors"))
    save_file({k.replace("layers.", "blocks."): v for k, v in weights.items()}, str(ckpt / "adapter_model.safetensors"))
    with pytest.raises(ExportError, match="does not match the model's module tree"):
        export(ckpt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_base_model_is_refused_and_model_flag_fixes_it(trained, tiny_qwen_causal, tmp_path, capsys):
    ckpt = _copy_checkpoint(trained, tmp_path)
    config = json.loads((ckpt / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "moved" / "base")
    (ckpt / "adapter_config.json").write_text(json.dumps(config))
    rc = main(["--adapters", str(ckpt), "--merge_lora", "true", "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(tmp_path / "moved" / "base") in err and "--model" in err
    assert not (tmp_path / "out").exists()
    rc = main(["--adapters", str(ckpt), "--model", str(tiny_qwen_causal), "--merge_lora", "true",
               "--output_dir", str(tmp_path / "out"), "--safe_serialization", "true"])
    assert rc == 0
    from sentence_transformers import SentenceTransformer

    np.testing.assert_allclose(probe_embeddings(SentenceTransformer(str(tmp_path / "out"))), trained["probe"], atol=1e-5)


def test_existing_output_needs_exist_ok(trained, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--adapters", str(trained["checkpoint"]), "--merge_lora", "true", "--output_dir", str(out)]) == 0
    rc = main(["--adapters", str(trained["checkpoint"]), "--merge_lora", "true", "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "already exists" in err and "--exist_ok" in err
    rc = main(["--adapters", str(trained["checkpoint"]), "--merge_lora", "true", "--output_dir", str(out),
               "--exist_ok", "true"])
    assert rc == 0 and (out / "modules.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_not_an_adapter_with_merge_lora(tiny_qwen_st, tmp_path, capsys):
    rc = main(["--adapters", str(tiny_qwen_st), "--merge_lora", "true", "--output_dir", str(tmp_path / "out")])
    assert rc == 2
    assert "not a LoRA adapter checkpoint" in capsys.readouterr().err
    with pytest.raises(ExportError, match="not a LoRA adapter"):
        export(tiny_qwen_st, tmp_path / "out", merge_lora=True)


def test_adapter_without_merge_is_refused(trained, tmp_path):
    with pytest.raises(ExportError, match="--merge_lora true"):
        export(trained["checkpoint"], tmp_path / "out", merge_lora=False)


def test_output_may_not_overwrite_checkpoint(trained):
    with pytest.raises(ExportError, match="overwrite the checkpoint"):
        export(trained["checkpoint"], trained["checkpoint"], exist_ok=True)


def test_cli_needs_a_checkpoint(capsys):
    with pytest.raises(SystemExit):
        main(["--output_dir", "x"])
    assert "--adapters CKPT" in capsys.readouterr().err


# --- atomicity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["write_legacy_layout", "_write_card", "assert_same"])
def test_failure_mid_export_leaves_nothing(trained, tmp_path, monkeypatch, stage):
    def boom(*args, **kwargs):
        raise RuntimeError(f"simulated failure in {stage}")

    monkeypatch.setattr(export_mod, stage, boom)
    with pytest.raises(RuntimeError, match="simulated failure"):
        export(trained["checkpoint"], tmp_path / "out", format="legacy")
    assert list(tmp_path.iterdir()) == []


def test_failed_replacement_keeps_old_output(trained, tmp_path, monkeypatch):
    out = export(trained["checkpoint"], tmp_path / "out")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(export_mod, "_write_card", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        export(trained["checkpoint"], out, exist_ok=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_similarity_demo(merged, capsys):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("similarity_demo", REPO / "evaluation_scripts" / "similarity_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.main(["--model", str(merged)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    values = [[float(x) for x in row.strip("[]").split(",")] for row in rows]
    assert len(values) == 2 and all(len(row) == 2 for row in values)
    assert all(-100.001 <= v <= 100.001 for row in values for v in row)
