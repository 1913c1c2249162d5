"""Training on the tiny Qwen3 model: run layout, swift logs, eval metrics, resume equality, signals, NaN stop,
and every bad-input path failing before a run folder exists."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from st_qwen3emb.cli.sft import main as sft_main
from st_qwen3emb.config import ConfigError, parse_args
from st_qwen3emb.runs import atomic_dir, find_resume_checkpoint, new_run_dir
from st_qwen3emb.training.callbacks import TRAIN_LOG_KEYS
from st_qwen3emb.training.evaluation import infonce_metrics
from st_qwen3emb.training.sft import resolve_prompts

PAIRS = [
    ("A man is playing a guitar.", "A person plays guitar.", 4.2),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.5),
    ("Kids are playing football.", "Children play soccer.", 4.6),
    ("The stock market fell today.", "Shares dropped sharply.", 3.8),
    ("She is cooking dinner.", "A woman prepares a meal.", 4.0),
    ("A plane is taking off.", "An airplane departs.", 4.8),
    ("The sun is bright.", "It is raining heavily.", 0.4),
    ("He reads a book.", "A man is reading.", 3.9),
]


@pytest.fixture(scope="module")
def sts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sts.jsonl"
    path.write_text("".join(json.dumps({"query": a, "response": b, "label": s / 5}) + "\n" for a, b, s in PAIRS))
    return path


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    rows = [{"query": a, "response": b, "rejected_response": [PAIRS[(i + 3) % 8][1]]} for i, (a, b, _) in enumerate(PAIRS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _flags(model, data, out, *extra):
    from st_qwen3emb.config import override_flags

    defaults = [
        "--model", str(model), "--dataset", str(data), "--output_dir", str(out), "--per_device_train_batch_size", "2",
        "--logging_steps", "1", "--learning_rate", "1e-3", "--dataloader_num_workers", "0", "--disable_tqdm", "true",
    ]  # fmt: skip
    return override_flags(defaults, list(extra))


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]


def _only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.name.startswith("v")]
    assert len(runs) == 1, runs
    return runs[0]


# --- a full run ------------------------------------------------------------------------------------
def test_full_run_layout_logs_eval_and_saved_prompts(tiny_qwen_causal, sts_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "out"
    argv = _flags(
        tiny_qwen_causal, sts_file, out, "--loss_type", "cosine_similarity", "--num_train_epochs", "1",
        "--split_dataset_ratio", "0.25", "--save_steps", "2", "--eval_steps", "2", "--max_seq_length", "32",
    )  # fmt: skip
    assert sft_main(argv) == 0
    run = _only_run(out)
    assert run.name.startswith("v0-")
    args = json.loads((run / "args.json").read_text())
    assert args["model_type"] == "qwen3_emb" and args["train_rows"] == 6 and args["eval_rows"] == 2
    assert args["max_length"] == 32 and args["dataset"] == [str(sts_file)] and "st_qwen3emb_version" in args
    assert args["env"] == {} and args["eval_steps"] == 2
    # 6 rows / batch 2 = 3 steps: checkpoints at 2 and 3 (the end), each loadable, last-checkpoint -> the newest
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert (run / "last-checkpoint").resolve() == (run / "checkpoint-3").resolve()
    assert (run / "checkpoint-2" / "args.json").is_file()
    assert not list(run.glob(".tmp-*"))
    records = _records(run)
    train_lines = [r for r in records if "loss" in r]
    assert len(train_lines) == 3 and list(train_lines[0])[: len(TRAIN_LOG_KEYS)] == list(TRAIN_LOG_KEYS)
    assert train_lines[-1]["global_step/max_steps"] == "3/3" and train_lines[-1]["percentage"] == "100.00%"
    eval_lines = [r for r in records if "eval_spearman_cosine" in r]
    assert eval_lines and {"eval_pearson_cosine", "eval_spearman_euclidean", "eval_spearman_manhattan", "eval_spearman_dot"} <= set(eval_lines[0])
    assert (run / "training_curves.png").stat().st_size > 1000
    state = json.loads((run / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] and (run / "best-checkpoint").is_symlink()

    final = SentenceTransformer(str(run / "final"))
    sts_prompt = "Instruct: Retrieve semantically similar text\nQuery:"
    assert final.prompts["STS"] == sts_prompt and args["prompts"] == {"anchor": sts_prompt, "positive": sts_prompt}
    assert final.tokenizer.padding_side == "left"
    ckpt = SentenceTransformer(str(run / "checkpoint-3"))
    text = ["a guitar"]
    assert torch.allclose(final.encode(text, convert_to_tensor=True), ckpt.encode(text, convert_to_tensor=True), atol=1e-6)
    # the weights moved
    from st_qwen3emb import load_model

    base = load_model(str(tiny_qwen_causal))
    assert not torch.allclose(final.encode(text, convert_to_tensor=True), base.encode(text, convert_to_tensor=True), atol=1e-4)


def test_infonce_run_reports_swift_metrics(tiny_qwen_causal, pairs_file, tmp_path, monkeypatch):
    monkeypatch.setenv("INFONCE_TEMPERATURE", "0.05")
    out = tmp_path / "out"
    argv = _flags(
        tiny_qwen_causal, pairs_file, out, "--loss_type", "infonce", "--max_steps", "2", "--val_dataset", str(pairs_file),
        "--eval_steps", "2", "--save_strategy", "no", "--query_instruction", "Find the paraphrase",
    )  # fmt: skip
    assert sft_main(argv) == 0
    run = _only_run(out)
    evals = [r for r in _records(run) if "eval_margin" in r]
    assert evals and {"eval_mean_pos", "eval_mean_neg", "eval_margin", "eval_loss"} <= set(evals[-1])
    assert not list(run.glob("checkpoint-*"))
    args = json.loads((run / "args.json").read_text())
    assert args["prompts"] == {"anchor": "Instruct: Find the paraphrase\nQuery:"}  # documents stay bare
    saved = json.loads((run / "final" / "config_sentence_transformers.json").read_text())["prompts"]
    assert saved["query"] == "Instruct: Find the paraphrase\nQuery:" and saved["document"] == ""
    # the INFONCE_* settings in effect (variable or swift's default) are recorded and shown on the card
    assert args["env"]["INFONCE_TEMPERATURE"] == 0.05 and args["env"]["INFONCE_USE_BATCH"] is True
    card = (run / "final" / "README.md").read_text()
    assert "`INFONCE_TEMPERATURE` = `0.05`" in card and "not recorded" not in card


def test_lora_run_saves_adapter_checkpoints(tiny_qwen_causal, sts_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb import load_model

    out = tmp_path / "out"
    argv = _flags(
        tiny_qwen_causal, sts_file, out, "--loss_type", "cosine_similarity", "--tuner_type", "lora", "--lora_rank", "4",
        "--lora_alpha", "8", "--max_steps", "2", "--save_steps", "2", "--learning_rate", "5e-2",
    )  # fmt: skip
    assert sft_main(argv) == 0
    run = _only_run(out)
    args = json.loads((run / "args.json").read_text())
    assert args["train_type"] == "lora" and args["lora_rank"] == 4 and args["learning_rate"] == 5e-2
    for folder in (run / "checkpoint-2", run / "final"):
        assert list(folder.rglob("adapter_config.json")), folder
    text = ["a guitar"]
    trained = SentenceTransformer(str(run / "final")).encode(text, convert_to_tensor=True)
    base = load_model(str(tiny_qwen_causal)).encode(text, convert_to_tensor=True)
    assert not torch.allclose(trained, base, atol=1e-4)


# --- resume ----------------------------------------------------------------------------------------
def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_resume_ends_with_the_same_weights(tiny_qwen_causal, sts_file, tmp_path):
    common = ("--loss_type", "cosine_similarity", "--num_train_epochs", "2", "--save_steps", "3", "--seed", "7")
    out = tmp_path / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, *common)) == 0  # 8 rows, batch 2: 8 steps
    first = _only_run(out)
    # resume from step 3 (mid-epoch) of the finished run: must retrace steps 4..8 exactly
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, *common, "--resume_from_checkpoint", str(first / "checkpoint-3"))) == 0
    second = max(out.glob("v1-*"))
    assert json.loads((second / "args.json").read_text())["resume_from_checkpoint"].endswith("checkpoint-3")
    steps = [r["global_step/max_steps"] for r in _records(second)]
    assert steps[:4] == ["1/8", "2/8", "3/8", "4/8"]  # the first run's history up to checkpoint-3, then step 4 on
    a, b = _weights(first / "final"), _weights(second / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    assert find_resume_checkpoint("last", out).parent == second


def test_lora_resume_ends_with_the_same_adapter(tiny_qwen_causal, sts_file, tmp_path, monkeypatch):
    from st_qwen3emb.lora import read_adapter_weights
    from st_qwen3emb.training.trainer import SwiftTrainer

    common = (
        "--loss_type", "cosine_similarity", "--tuner_type", "lora", "--lora_rank", "4", "--lora_alpha", "8",
        "--max_steps", "4", "--save_steps", "2", "--learning_rate", "5e-2", "--seed", "7",
    )  # fmt: skip
    out = tmp_path / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, *common)) == 0
    first = _only_run(out)
    resume = _flags(tiny_qwen_causal, sts_file, out, *common, "--resume_from_checkpoint", str(first / "checkpoint-2"))
    with monkeypatch.context() as patch:  # a resume that fails to load its checkpoint leaves no half run folder
        patch.setattr(SwiftTrainer, "_load_from_checkpoint", lambda self, *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            sft_main(resume)
    assert _only_run(out) == first
    # the checkpoint holds the adapter, not a full state dict: resuming must load it into the live adapter
    assert sft_main(resume) == 0
    second = max(out.glob("v1-*"))
    a, b = read_adapter_weights(first / "final"), read_adapter_weights(second / "final")
    assert a and a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    assert not torch.allclose(a[name], read_adapter_weights(first / "checkpoint-2")[name])  # steps 3-4 trained it


def test_sigint_saves_a_checkpoint_and_stops(tiny_qwen_causal, sts_file, tmp_path, monkeypatch):
    from st_qwen3emb.training.callbacks import SignalCallback
    from st_qwen3emb.training.run import TrainingInterrupted
    from st_qwen3emb.training.sft import train

    original = SignalCallback.on_step_end

    def interrupt_at_step_2(self, args, state, control, **kwargs):
        if state.global_step == 2 and self.received is None:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(SignalCallback, "on_step_end", interrupt_at_step_2)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when started in the background
    out = tmp_path / "out"
    config = parse_args(_flags(tiny_qwen_causal, sts_file, out, "--loss_type", "cosine_similarity", "--save_strategy", "no"))
    with pytest.raises(TrainingInterrupted) as info:
        train(config)
    run = _only_run(out)
    assert info.value.checkpoint == run / "checkpoint-2" and (run / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (run / "final").exists()
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


def test_nan_loss_stops_naming_the_step(tiny_qwen_causal, sts_file, tmp_path, monkeypatch, capsys):
    import st_qwen3emb.losses as losses

    real = losses.build_loss

    def nan_loss(loss_type, model, **options):
        inner = real(loss_type, model, **options)

        class NaNLoss(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner, self.model = inner, model

            def forward(self, features, labels):
                return inner(features, labels) * float("nan")

        return NaNLoss()

    monkeypatch.setattr(losses, "build_loss", nan_loss)
    assert sft_main(_flags(tiny_qwen_causal, sts_file, tmp_path / "out", "--loss_type", "cosine_similarity")) == 1
    assert "nan at step 1" in capsys.readouterr().err


# --- bad input: an error before any run folder exists -------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "/nonexistent/model"], "does not exist"),
        (["--loss_type", "cosine_simlarity"], "Did you mean 'cosine_similarity'"),
        (["--loss_type", "pointwise_reranker"], "reranker loss"),
        (["--resume_from_checkpoint", "/nonexistent/checkpoint-3"], "no such folder"),
        (["--resume_from_checkpoint", "last"], "no checkpoint-* folder"),
        (["--model_type", "qwen3_reranker"], "does not fit"),
        (["--eval_retrieval", "/nonexistent/beir"], "no such file"),
    ],
)
def test_bad_input_fails_before_training(tiny_qwen_causal, sts_file, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    flags = {"--model": str(tiny_qwen_causal), "--loss_type": "cosine_similarity"}
    rest = []
    it = iter(extra)
    for flag in it:
        value = next(it)
        if flag in flags:
            flags[flag] = value
        else:
            rest += [flag, value]
    argv = ["--dataset", str(sts_file), "--output_dir", str(out), *[x for kv in flags.items() for x in kv], *rest]
    assert sft_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_bad_data_row_is_named_before_training(tiny_qwen_causal, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"query": "a", "response": "b", "label": 0.5}) + "\n" + json.dumps({"query": "c", "label": 0.5}) + "\n")
    out = tmp_path / "out"
    argv = ["--model", str(tiny_qwen_causal), "--dataset", str(data), "--loss_type", "cosine_similarity", "--output_dir", str(out)]
    assert sft_main(argv) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "2" in err
    assert not out.exists()


def test_instructions_on_a_non_qwen_model_are_refused(minilm_dir, sts_file, tmp_path, capsys):
    argv = [
        "--model", str(minilm_dir), "--dataset", str(sts_file), "--loss_type", "cosine_similarity",
        "--output_dir", str(tmp_path / "out"), "--query_instruction", "x",
    ]  # fmt: skip
    assert sft_main(argv) == 2
    assert "Qwen3" in capsys.readouterr().err


def test_unknown_flag_exit_code(capsys):
    assert sft_main(["--model", "m", "--dataset", "d", "--loss_type", "infonce", "--lerning_rate", "1"]) == 2
    assert "Did you mean --learning_rate" in capsys.readouterr().err


# --- pure pieces -----------------------------------------------------------------------------------
def test_infonce_metrics_on_fixed_vectors():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    metrics = infonce_metrics(anchors, documents, torch.tensor([0, 1]))
    assert metrics["mean_pos"] == pytest.approx(1.0)
    # anchor 0 others: 0.0, 0.6 -> mean 0.3, best 0.6; anchor 1 others: 0.0, 0.8 -> mean 0.4, best 0.8
    assert metrics["mean_neg"] == pytest.approx(0.35)
    assert metrics["margin"] == pytest.approx(((1 - 0.6) + (1 - 0.8)) / 2)


def test_resolve_prompts_rules():
    model_prompts = {"query": "Instruct: web\nQuery:", "document": ""}
    sym = resolve_prompts(symmetric=True, is_qwen=True, model_prompts=model_prompts, query_instruction=None,
                          document_instruction=None, columns=["anchor", "positive", "label"])  # fmt: skip
    sts = "Instruct: Retrieve semantically similar text\nQuery:"
    assert sym.columns == {"anchor": sts, "positive": sts} and sym.saved == {"STS": sts, "PairClassification": sts}
    bare_docs = resolve_prompts(symmetric=True, is_qwen=True, model_prompts=model_prompts, query_instruction="Q",
                                document_instruction="", columns=["anchor", "positive"])  # fmt: skip
    assert bare_docs.columns == {"anchor": "Instruct: Q\nQuery:"} and bare_docs.saved["document"] == ""
    asym = resolve_prompts(symmetric=False, is_qwen=True, model_prompts=model_prompts, query_instruction=None,
                           document_instruction=None, columns=["anchor", "positive", "negative_1"])  # fmt: skip
    assert asym.columns == {"anchor": "Instruct: web\nQuery:"} and asym.saved == model_prompts
    bare = resolve_prompts(symmetric=True, is_qwen=True, model_prompts=model_prompts, query_instruction="",
                           document_instruction=None, columns=["anchor", "positive"])  # fmt: skip
    assert bare.columns == {} and bare.saved == {"STS": "", "PairClassification": "", "query": ""}  # swift's inputs
    other = resolve_prompts(symmetric=True, is_qwen=False, model_prompts={}, query_instruction=None,
                            document_instruction=None, columns=["anchor", "positive"])  # fmt: skip
    assert other.columns == {} and other.saved == {}
    with pytest.raises(ConfigError):
        resolve_prompts(symmetric=False, is_qwen=False, model_prompts={}, query_instruction="x",
                        document_instruction=None, columns=["anchor"])  # fmt: skip


def test_run_dirs_number_up_and_atomic_dirs_leave_nothing_on_failure(tmp_path):
    assert new_run_dir(tmp_path).name.startswith("v0-")
    assert new_run_dir(tmp_path).name.startswith("v1-")
    target = tmp_path / "checkpoint-5"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_text("x")
        raise RuntimeError("disk full")
    assert not target.exists() and not list(tmp_path.glob(".tmp-*"))
    with atomic_dir(target) as tmp:
        (tmp / "done").write_text("y")
    assert (target / "done").is_file()


# --- real weights, real data (slow) ---------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_on_stsb_raises_validation_spearman(minilm_dir, stsb_dir, tmp_path):
    """A shortened acceptance run (the full one is in the README): 480 STS-B train rows, 30 steps."""
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.data import load_dataset
    from st_qwen3emb.training.evaluation import build_sts_evaluator

    val = f"{stsb_dir / 'validation.tsv'}#300"
    evaluator = build_sts_evaluator(load_dataset(val, loss_type="cosine_similarity", split="test"), name="sts",
                                    prompt=None, batch_size=64)  # fmt: skip
    before = evaluator(SentenceTransformer(str(minilm_dir)))["sts_spearman_cosine"]
    out = tmp_path / "out"
    argv = [
        "--model", str(minilm_dir), "--dataset", f"{stsb_dir / 'train.tsv'}#480", "--loss_type", "cosine_similarity",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--learning_rate", "2e-5",
        "--eval_sts", val, "--eval_strategy", "steps", "--eval_steps", "30", "--save_strategy", "no",
        "--output_dir", str(out), "--disable_tqdm", "true",
    ]  # fmt: skip
    assert sft_main(argv) == 0
    run = _only_run(out)
    after = [r for r in _records(run) if "eval_sts_spearman_cosine" in r][-1]["eval_sts_spearman_cosine"]
    assert after > before, (before, after)
    assert evaluator(SentenceTransformer(str(run / "final")))["sts_spearman_cosine"] == pytest.approx(after, abs=1e-6)


@pytest.mark.slow
def test_train_sts_script_runs_offline(tmp_path, monkeypatch, capsys):
    import importlib.util

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    script = Path(__file__).resolve().parents[1] / "training_scripts" / "train_sts.py"
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location("train_sts", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--disable_tqdm", "true"]) == 0
    printed = capsys.readouterr().out
    run = _only_run(tmp_path / "out")
    assert "offline recipe" in printed and str(run / "final") in printed and "Next:" in printed
    assert "eval_spearman_cosine" in printed and "before training ->" in printed  # the closing summary's scores
    assert json.loads((run / "args.json").read_text())["model"].endswith("model")
