"""The model card: Hub-valid metadata, numbers only from the artefacts, usage snippets that run.

Each test builds a small, realistic training run (args.json, logging.jsonl, training_curves.png per contract 4) and
evaluation summaries (contract 7) in tmp_path around the tiny Qwen3 sentence-transformers folder.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from _link_copy import link_copy

from st_qwen3emb.cli.card import main
from st_qwen3emb.model_card import CardInputError, build_command, write_model_card

BASE = "Qwen/Qwen3-Embedding-0.6B"
ARGS = {
    "model": BASE,
    "task_type": "embedding",
    "model_type": "qwen3_emb",
    "train_type": "lora",
    "dataset": ["sentence-transformers/stsb:positive#500", "/data/local_pairs.jsonl"],
    "val_dataset": [],
    "loss_type": "infonce",
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 2,
    "learning_rate": 6e-06,
    "max_length": 256,
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["all-linear"],
    "mrl_dims": None,
    "query_instruction": "Retrieve semantically similar text",
    "document_instruction": None,
    "seed": 42,
    "output_dir": "output",
    "infonce_temperature": 0.02,
    "infonce_use_batch": True,
    "resume_from_checkpoint": None,
    "warmup_ratio": 0.0,
    "lr_scheduler_type": "cosine",
    "prompts": {"anchor": "Instruct: Retrieve semantically similar text\nQuery:", "positive": ""},
    "saved_prompts": {"query": "Instruct: Retrieve semantically similar text\nQuery:", "document": ""},
    "run_dir": "output/v0-20261129-091500",
    "train_rows": 437,
    "eval_rows": 23,
    "st_qwen3emb_version": "0.1.0",
}
LOG = [
    {"loss": 2.7183, "grad_norm": 3.1416, "learning_rate": 5.5e-06, "memory(GiB)": 1.37, "train_speed(iter/s)": 0.412,
     "epoch": 0.5, "global_step/max_steps": "14/28", "percentage": "50.00%", "elapsed_time": "34s",
     "remaining_time": "34s"},
    {"eval_loss": 1.6180, "eval_mean_pos": 0.7071, "eval_mean_neg": 0.3333, "eval_margin": 0.1414,
     "global_step/max_steps": "28/28"},
    {"loss": 1.4142, "grad_norm": 2.2361, "learning_rate": 0.0, "memory(GiB)": 1.37, "train_speed(iter/s)": 0.415,
     "epoch": 1.0, "global_step/max_steps": "28/28", "percentage": "100.00%", "elapsed_time": "1m 8s",
     "remaining_time": "0s"},
]


def _result(model: str, name: str, score: float, pearson: float, task="STSBenchmark", task_type="STS",
            dataset=None, metric="cosine_spearman") -> dict:
    return {
        "model": model,
        "model_name": name,
        "task": task,
        "task_type": task_type,
        "dataset": dataset or {"name": "STSBenchmark", "type": "mteb/stsbenchmark-sts", "split": "test", "config": None},
        "instruction": "Retrieve semantically similar text",
        "main_metric": metric,
        "main_score": score,
        "metrics": {metric: score, "cosine_pearson": pearson},
        "num_texts": 2758,
        "seconds": 17.25,
    }


def _link_copy(src: Path, dst: Path) -> Path:
    """A copy of the tiny model folder made of hard links (cheap) and without a card, so a test may write its own."""
    return link_copy(src, dst, drop_card=True)


@pytest.fixture
def run_dir(tmp_path, tiny_qwen_st) -> Path:
    run = tmp_path / "output" / "v0-20261129-091500"
    run.mkdir(parents=True)
    (run / "args.json").write_text(json.dumps(ARGS, indent=2))
    (run / "logging.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOG))
    (run / "training_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"curves")
    _link_copy(tiny_qwen_st, run / "final")
    return run


@pytest.fixture
def eval_file(tmp_path, run_dir) -> Path:
    final = str(run_dir / "final")
    summary = {
        "format": "st-qwen3emb-eval/1",
        "created": "2026-11-29T09:40:00+00:00",
        "results": [
            _result(BASE, "Qwen3-Embedding-0.6B", 0.8912, 0.8790),
            _result(final, "final", 0.9043, 0.8977),
            _result(BASE, "Qwen3-Embedding-0.6B", 0.6123, 0.5, task="cranfield", task_type="Retrieval",
                    dataset={"name": "cranfield", "type": "/work/shared/data/retrieval/cranfield", "split": "test",
                             "config": None}, metric="ndcg_at_10"),
            _result(final, "final", 0.6456, 0.5, task="cranfield", task_type="Retrieval",
                    dataset={"name": "cranfield", "type": "/work/shared/data/retrieval/cranfield", "split": "test",
                             "config": None}, metric="ndcg_at_10"),
            _result("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", 0.8203, 0.8211),
        ],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(summary))
    return path


def _card(path: Path):
    from huggingface_hub import ModelCard

    return ModelCard.load(path)


def _numeric_leaves(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numeric_leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numeric_leaves(v)]
    return []


def test_metadata_is_hub_valid_and_model_index_holds_this_models_scores(run_dir, eval_file):
    from huggingface_hub import ModelCardData

    path = write_model_card(run_dir / "final", eval_files=[eval_file])
    assert path == run_dir / "final" / "README.md"
    card = _card(path)
    meta = card.data.to_dict()
    assert meta["library_name"] == "sentence-transformers"
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert meta["base_model"] == BASE
    assert meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["sentence-transformers/stsb"]  # the local .jsonl is not a Hub dataset
    assert {"qwen3", "loss:infonce", "lora", "dataset_size:437", "sentence-transformers"} <= set(meta["tags"])
    assert meta["language"]

    (entry,) = meta["model-index"]
    assert entry["name"] == "Qwen3-Embedding-0.6B-v0-20261129-091500"  # base + run, not the folder name "final"
    found = {}
    for result in entry["results"]:
        assert result["task"]["type"] and result["task"]["name"]
        assert result["dataset"]["name"] and result["dataset"]["type"] and result["dataset"]["split"] == "test"
        assert not result["dataset"]["type"].startswith("/")  # no local filesystem path published
        for metric in result["metrics"]:
            assert metric["type"] and isinstance(metric["value"], float)
            found[(result["dataset"]["name"], metric["type"])] = metric["value"]
    # exactly the fine-tuned model's numbers; the base model's and MiniLM's are in the table only
    assert found == {
        ("STSBenchmark", "cosine_spearman"): 0.9043,
        ("STSBenchmark", "cosine_pearson"): 0.8977,
        ("cranfield", "ndcg_at_10"): 0.6456,
        ("cranfield", "cosine_pearson"): 0.5,
    }
    # the metadata round-trips through huggingface_hub's validation
    ModelCardData(**meta)


def test_evaluation_table_has_base_and_finetuned_columns_with_the_files_numbers(run_dir, eval_file):
    text = write_model_card(run_dir / "final", eval_files=[eval_file]).read_text()
    table = [line for line in text.splitlines() if line.startswith("| STSBenchmark") or line.startswith("| cranfield")]
    header = next(line for line in text.splitlines() if line.startswith("| task |"))
    assert header.index("(base)") < header.index("(this model)") < header.index("all-MiniLM-L6-v2")
    assert table[0].split("|")[4:7] == [" 0.8912 ", " 0.9043 ", " 0.8203 "]
    assert table[1].split("|")[4:7] == [" 0.6123 ", " 0.6456 ", " not evaluated "]


def test_every_number_in_the_body_was_measured_or_configured(run_dir, eval_file):
    text = write_model_card(run_dir / "final", eval_files=[eval_file]).read_text()
    body = text.split("\n---\n", 1)[1]
    body = body.split("## Framework versions")[0]  # versions are package versions, not measurements
    summary = json.loads(eval_file.read_text())
    allowed = set()
    for value in _numeric_leaves(summary) + _numeric_leaves(LOG) + _numeric_leaves(ARGS):
        allowed |= {str(value), f"{value:.4f}"}
    decimals = set(re.findall(r"(?<![\w.-])\d+\.\d+(?![\w.])", body))
    assert decimals, "the card should report measured scores"
    assert decimals <= allowed, f"numbers in the card that no artefact holds: {decimals - allowed}"
    # the training log's final numbers are the real last lines
    assert "final training loss: 1.4142 at step `28/28`" in body
    assert "`eval_margin` 0.1414" in body


def test_training_section_and_curves_picture(run_dir):
    text = write_model_card(run_dir / "final").read_text()
    assert (run_dir / "final" / "training_curves.png").read_bytes() == (run_dir / "training_curves.png").read_bytes()
    assert "![training curves](training_curves.png)" in text
    assert "437 training rows, 23 evaluation rows" in text
    assert "`INFONCE_TEMPERATURE` = `0.02`" in text
    assert "Not evaluated" in text
    assert "model-index" not in text.split("\n---\n", 1)[0]


def test_rebuilt_commands_reproduce_args_json():
    st_cmd = build_command(ARGS, "st-qwen3emb sft")
    swift_cmd = build_command(ARGS, "swift sft")
    commands = {}
    for command, program in ((st_cmd, ["st-qwen3emb", "sft"]), (swift_cmd, ["swift", "sft"])):
        words = shlex.split(command.replace("\\\n", " "))
        assert words[:2] == ["INFONCE_TEMPERATURE=0.02", "INFONCE_USE_BATCH=true"]
        assert words[2:4] == program
        flags: dict[str, list[str]] = {}
        for word in words[4:]:
            if word.startswith("--"):
                current = flags.setdefault(word[2:], [])
            else:
                current.append(word)
        commands[program[0]] = flags
        assert flags["dataset"] == ARGS["dataset"]
        assert float(flags["learning_rate"][0]) == ARGS["learning_rate"]
        assert flags["loss_type"] == ["infonce"] and flags["lr_scheduler_type"] == ["cosine"]
        for record in ("train_rows", "mrl_dims", "infonce_temperature", "prompts", "run_dir", "resume_from_checkpoint"):
            assert record not in flags
    st, swift = commands["st-qwen3emb"], commands["swift"]
    assert st["query_instruction"] == ["Retrieve semantically similar text"] and "query_instruction" not in swift
    assert st["train_type"] == ["lora"] and swift["tuner_type"] == ["lora"]  # ms-swift 4 spelling
    # st-qwen3emb omits its own defaults (seed 42, lora_rank 16); swift gets every value, its defaults differ
    assert "seed" not in st and "lora_rank" not in st
    assert swift["seed"] == ["42"] and swift["lora_rank"] == ["16"]
    from st_qwen3emb.config import parse_args

    rebuilt = parse_args([w for w in shlex.split(st_cmd.replace("\\\n", " "))[4:]])
    for key in ("model", "train_type", "loss_type", "learning_rate", "max_length", "lora_dropout", "query_instruction"):
        assert getattr(rebuilt, key) == ARGS[key]
    assert list(rebuilt.dataset) == ARGS["dataset"]


def test_run_found_from_a_checkpoint_folder(run_dir, tiny_qwen_st):
    checkpoint = _link_copy(tiny_qwen_st, run_dir / "checkpoint-28")
    text = write_model_card(checkpoint).read_text()
    assert "## Training" in text and "fine-tuned from" in text


def test_folder_outside_a_run_gets_no_training_section(tmp_path, tiny_qwen_st):
    model = _link_copy(tiny_qwen_st, tmp_path / "exported")
    meta_text = write_model_card(model, base_model=BASE).read_text()
    assert "## Training" not in meta_text
    assert "Not evaluated" in meta_text
    meta = _card(model / "README.md").data.to_dict()
    assert meta["base_model"] == BASE and "model-index" not in meta and "model_name" not in meta
    assert not (model / "training_curves.png").exists()
    # an export writing into a temporary folder names the card after the final folder
    text = write_model_card(model, base_model=BASE, model_name="qwen3-emb-stsb").read_text()
    assert "\n# qwen3-emb-stsb\n" in text and "SentenceTransformer('qwen3-emb-stsb')" in text


def test_local_base_model_is_not_published_as_base_model(tmp_path, tiny_qwen_st, tiny_qwen_causal):
    model = _link_copy(tiny_qwen_st, tmp_path / "exported")
    write_model_card(model, base_model=str(tiny_qwen_causal))
    meta = _card(model / "README.md").data.to_dict()
    assert "base_model" not in meta  # a local path is not a Hub id
    assert meta["license"] == "apache-2.0"  # Qwen3 architecture


def test_reranker_card_uses_text_ranking(tmp_path, tiny_qwen_st):
    model = _link_copy(tiny_qwen_st, tmp_path / "reranker")
    text = write_model_card(model, task_type="reranker").read_text()
    meta = _card(model / "README.md").data.to_dict()
    assert meta["pipeline_tag"] == "text-ranking"
    assert "CrossEncoder" in text and "encode_query" not in text


def test_task_type_comes_from_the_run_when_not_given(run_dir):
    args = {**ARGS, "task_type": "generative_reranker", "loss_type": "listwise_reranker", "model_type": "qwen3_reranker",
            "reranker_instruction": "Judge relevance",
            "env": {"MAX_NEGATIVE_SAMPLES": 3, "LISTWISE_RERANKER_TEMPERATURE": 0.5}}
    (run_dir / "args.json").write_text(json.dumps(args))
    text = write_model_card(run_dir / "final").read_text()
    meta = _card(run_dir / "final" / "README.md").data.to_dict()
    assert meta["pipeline_tag"] == "text-ranking" and "loss:listwise_reranker" in meta["tags"]
    # the reranker's environment settings are shown and set in front of the command; INFONCE_* ones are not
    assert "`MAX_NEGATIVE_SAMPLES` = `3`" in text and "`LISTWISE_RERANKER_TEMPERATURE` = `0.5`" in text
    assert "MAX_NEGATIVE_SAMPLES=3 LISTWISE_RERANKER_TEMPERATURE=0.5 st-qwen3emb sft" in text
    assert "INFONCE_" not in text and "--reranker_instruction" not in text


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_usage_snippets_run_and_agree(tmp_path, tiny_qwen_st):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model_dir = _link_copy(tiny_qwen_st, tmp_path / "exported")
    text = write_model_card(model_dir).read_text()
    st_snippet, hf_snippet = _python_blocks(text)
    assert "encode_query" in st_snippet and "encode_document" in st_snippet
    for snippet in (st_snippet, hf_snippet):
        assert "'exported'" in snippet
    namespace: dict = {}
    exec(st_snippet.replace("'exported'", repr(str(model_dir))), namespace)  # noqa: S102 - our own generated code
    assert namespace["query_embeddings"].shape[0] == 2
    namespace = {}
    exec(hf_snippet.replace("'exported'", repr(str(model_dir))), namespace)  # noqa: S102
    plain = namespace["embeddings"].numpy()
    st_model = SentenceTransformer(str(model_dir))
    expected_q = st_model.encode_query(["What is the capital of China?"])
    expected_d = st_model.encode_document(["The capital of China is Beijing."])
    np.testing.assert_allclose(plain[0], expected_q[0], atol=1e-5)
    np.testing.assert_allclose(plain[1], expected_d[0], atol=1e-5)
    # the prompts printed in the card are the ones stored with the model, verbatim
    stored = json.loads((model_dir / "config_sentence_transformers.json").read_text())["prompts"]
    for name, prompt in stored.items():
        assert f"| `{name}` | `{json.dumps(prompt)}` |" in text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(format="other/1"), "field 'format'"),
        (lambda s: s["results"][0].pop("main_score"), "result 1 lacks field(s) main_score"),
        (lambda s: s["results"][0]["dataset"].pop("type"), "result 1: field 'dataset'"),
        (lambda s: s["results"][0]["metrics"].update(cosine_pearson="high"), "result 1: field 'metrics'"),
    ],
)
def test_bad_evaluation_summary_names_file_and_field(tmp_path, run_dir, eval_file, mutate, message):
    summary = json.loads(eval_file.read_text())
    mutate(summary)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(summary))
    before = (run_dir / "final" / "README.md").exists()
    with pytest.raises(CardInputError, match=re.escape(message)) as info:
        write_model_card(run_dir / "final", eval_files=[bad])
    assert str(bad) in str(info.value)
    assert (run_dir / "final" / "README.md").exists() == before  # nothing written on bad input


def test_cli_writes_the_card(run_dir, eval_file, capsys):
    assert main(["--model_dir", str(run_dir / "final"), "--eval", str(eval_file), "--base_model", BASE]) == 0
    assert "wrote" in capsys.readouterr().out
    assert _card(run_dir / "final" / "README.md").data.to_dict()["model-index"]
    assert main(["--model_dir", str(run_dir / "missing")]) == 2


def test_lora_adapter_folder_gets_a_card_and_passes_the_push_check(tmp_path, tiny_qwen_st):
    lora = pytest.importorskip("st_qwen3emb.lora", reason="needs the LoRA module (issue 5)")
    from st_qwen3emb import load_model
    from st_qwen3emb.hub import check_model_folder

    folder = tmp_path / "adapter"
    lora.add_lora(load_model(str(tiny_qwen_st)), rank=4, alpha=8).save(str(folder))
    text = write_model_card(folder).read_text()
    assert "LoRA adapter" in text and "AutoModel" not in text  # no transformers snippet for an unmerged adapter
    assert "encode_query" in text
    check_model_folder(folder)


# --- issue 14.2, 17.7: the card's name, its swift command, escaping and local paths ---------------------------------
def test_card_written_by_training_is_named_after_the_final_folder_not_the_temporary_one(run_dir, tiny_qwen_st):
    from st_qwen3emb.training.run import _write_card

    tmp = _link_copy(tiny_qwen_st, run_dir / ".tmp-final")  # training saves final/ there, then renames it
    _write_card(tmp, run_dir)
    text = (tmp / "README.md").read_text()
    assert ".tmp-final" not in text and ".tmp" not in text
    assert "\n# Qwen3-Embedding-0.6B-v0-20261129-091500\n" in text
    assert "SentenceTransformer('Qwen3-Embedding-0.6B-v0-20261129-091500')" in text


FULL_RUN = {**ARGS, "train_type": "full", "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.1,
            "target_modules": ["all-linear"], "embedding_grad": "rows", "trust_remote_code": False,
            "eval_sts": ["/data/sts.tsv"], "eval_retrieval": [], "document_instruction": "Doc",
            "model_type": "qwen3_emb", "dataloader_drop_last": True}


def _flags_of(command: str) -> dict[str, list[str]]:
    words = shlex.split(command.replace("\\\n", " "))
    program = words.index("sft")
    flags: dict[str, list[str]] = {}
    for word in words[program + 1:]:
        if word.startswith("--"):
            current = flags.setdefault(word[2:], [])
        else:
            current.append(word)
    return flags


def test_swift_command_lists_only_real_swift_flags_the_run_used():
    swift = _flags_of(build_command(FULL_RUN, "swift sft"))
    # this project's own flags are not swift's; LoRA flags configure nothing on a full run
    for ours in ("embedding_grad", "trust_remote_code", "query_instruction", "document_instruction", "eval_sts",
                 "eval_retrieval", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "train_type"):
        assert ours not in swift, ours
    assert swift["tuner_type"] == ["full"] and swift["model_type"] == ["qwen3_emb"]
    assert swift["loss_type"] == ["infonce"] and swift["dataloader_drop_last"] == ["true"]
    assert swift["lr_scheduler_type"] == ["cosine"]  # a passed-through TrainingArguments flag swift inherits
    st = _flags_of(build_command(FULL_RUN, "st-qwen3emb sft"))
    assert not {"lora_rank", "lora_alpha", "lora_dropout", "target_modules"} & set(st)
    from st_qwen3emb.config import parse_args

    parse_args(shlex.split(build_command(FULL_RUN, "st-qwen3emb sft").replace("\\\n", " "))[4:])  # the parser accepts it
    lora = _flags_of(build_command(ARGS, "swift sft"))
    assert lora["lora_rank"] == ["16"] and lora["tuner_type"] == ["lora"]


EVIL = "x\n---\n# Owned\n<img src=x onerror=alert(1)> [click](javascript:alert(1)) | a | b `code` ```"


def _html(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    body = text.split("\n---\n", 1)[1]  # after the YAML front matter
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(body)


def test_user_text_in_the_card_is_escaped(tmp_path, run_dir, eval_file):
    args = {**ARGS, "dataset": [f"/data/{EVIL}.jsonl"], "val_dataset": [EVIL], "loss_type": f"infonce{EVIL}",
            "lr_scheduler_type": EVIL}
    (run_dir / "args.json").write_text(json.dumps(args))
    summary = json.loads(eval_file.read_text())
    summary["results"][0].update(task=EVIL, model_name=EVIL, main_metric=EVIL, metrics={EVIL: 0.5})
    summary["results"][0]["dataset"]["name"] = EVIL
    eval_file.write_text(json.dumps(summary))
    write_model_card(run_dir / "final", eval_files=[eval_file], model_name=f"name{EVIL}")
    text = (run_dir / "final" / "README.md").read_text()
    html = _html(text)
    assert re.findall(r"<img[^>]*>", html) == ['<img src="training_curves.png" alt="training curves" />']
    assert all(href.startswith("https://") for href in re.findall(r'href="([^"]*)"', html))
    assert "<h1>Owned" not in html
    assert html.count("<h1>") == 1 and "<hr" not in html
    # every table row keeps its number of cells
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        counts = {len(re.findall(r"<t[dh][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, flags=re.S)}
        assert len(counts) == 1, table
    # the text itself is still there, shown literally
    assert "onerror=alert(1)" in html and "# Owned" in html.replace("\\n", "\n")
    # the front matter still parses and the commands keep the exact values (bash $'...' quoting)
    assert _card(run_dir / "final" / "README.md").data.to_dict()["library_name"] == "sentence-transformers"
    swift_block = re.search(r"(`{3,})bash\n(.*?swift sft.*?)\n\1\n", text, flags=re.S).group(2)
    assert "lr_scheduler_type $'" in swift_block


def test_local_paths_are_published_as_their_final_component_unless_keep_paths(tmp_path, run_dir, eval_file):
    local_model = tmp_path / "models" / "Qwen3-Embedding-0.6B"
    local_model.mkdir(parents=True)
    args = {**ARGS, "model": str(local_model), "output_dir": str(tmp_path / "out"),
            "dataset": [str(tmp_path / "data" / "pairs.jsonl") + "#100", "sentence-transformers/stsb:positive"]}
    (run_dir / "args.json").write_text(json.dumps(args))
    card = write_model_card(run_dir / "final", eval_files=[eval_file])
    text = card.read_text()
    assert str(tmp_path) not in text and "/work/" not in text
    assert "pairs.jsonl#100" in text and "`Qwen3-Embedding-0.6B`" in text and "--output_dir out" in text
    assert "sentence-transformers/stsb:positive" in text
    assert main(["--model_dir", str(run_dir / "final"), "--keep_paths"]) == 0
    assert str(local_model) in card.read_text()


@pytest.mark.parametrize("bad", ["not a/valid/id", "bad name", "a/b/c", "a--b"])
def test_malformed_base_model_is_a_one_line_error(run_dir, bad, capsys):
    assert main(["--model_dir", str(run_dir / "final"), "--base_model", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--base_model" in err and "Traceback" not in err


def _official_layout(tmp_path: Path, tiny_qwen_st: Path) -> Path:
    """The upstream Qwen3-Embedding layout: modules.json lists 2_Normalize, which has no folder."""
    model = _link_copy(tiny_qwen_st, tmp_path / "Qwen3-Embedding-official")
    import shutil

    shutil.rmtree(model / "2_Normalize")
    modules = json.loads((model / "modules.json").read_text())
    for entry, upstream in zip(modules, ("Transformer", "Pooling", "Normalize"), strict=True):
        entry["type"] = f"sentence_transformers.models.{upstream}"  # the upstream file's spelling
    (model / "modules.json").write_text(json.dumps(modules))
    return model


@pytest.mark.parametrize("without_st_config", [False, True])
def test_card_and_push_accept_what_sentence_transformers_loads(tmp_path, tiny_qwen_st, without_st_config, capsys):
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.cli import push as push_cli

    model = _official_layout(tmp_path, tiny_qwen_st)
    if without_st_config:
        (model / "config_sentence_transformers.json").unlink()
    SentenceTransformer(str(model), device="cpu")  # plain sentence-transformers loads it ...
    assert main(["--model_dir", str(model), "--base_model", BASE]) == 0  # ... so card and push accept it
    assert push_cli.main(["--model_dir", str(model), "--repo_id", "me/model", "--dry_run"]) == 0, capsys.readouterr().err


def test_card_never_overwrites_a_readme_the_user_wrote(tmp_path, tiny_qwen_st, capsys):
    import shutil

    model = tmp_path / "mymodel"
    shutil.copytree(tiny_qwen_st, model)
    assert main(["--model_dir", str(model), "--base_model", BASE]) == 0  # sentence-transformers' own card: replaced
    assert main(["--model_dir", str(model), "--base_model", BASE]) == 0  # our card: replaced
    (model / "README.md").write_text("MY OWN NOTES\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--model_dir", str(model), "--base_model", BASE]) == 2
    err = capsys.readouterr().err
    assert "not written by st-qwen3emb" in err and len(err.strip().splitlines()) == 1
    assert (model / "README.md").read_text(encoding="utf-8") == "MY OWN NOTES\n"
