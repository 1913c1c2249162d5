"""Distributed training: the NPROC_PER_NODE relaunch, gloo on CPU, rank-0-only writing, and the exactness check
that 2 processes x batch B give the same loss and the same weights after one step as 1 process x batch 2B.

The exactness check runs the real command line both ways (``NPROC_PER_NODE=2 st-qwen3emb sft`` under
``torch.distributed.run`` with gloo, and a plain single-process run) and compares the logged loss, the logged
gradient norm and the saved weights. Plain SGD without clipping, so a wrong gradient scale (DDP averaging vs the
infonce gather) changes the weights; Adam's first step and clipping would both hide it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from st_qwen3emb import distributed
from st_qwen3emb.config import ConfigError

ROWS = [
    ("what is the capital of france", "paris is the capital of france"),
    ("how tall is everest", "mount everest is 8849 metres high"),
    ("who wrote hamlet", "hamlet was written by shakespeare"),
    ("what do cats eat", "cats eat meat and fish"),
    ("when did the second world war end", "the second world war ended in 1945"),
    ("what is python", "python is a programming language"),
    ("how far is the moon", "the moon is 384400 km away"),
    ("what is water made of", "water is made of hydrogen and oxygen"),
]
BATCH = 2  # per process of the 2-process run; the single-process run uses 2 * BATCH
LEARNING_RATE = 1e-3


def _sft_flags(model: Path, data: Path, output_dir: Path, processes: int) -> list[str]:
    """The same global batch either way: ``BATCH`` rows per process for training, 2 held-out rows for evaluation
    (several processes drop the last incomplete batch, so the eval batch is split exactly too)."""
    batch, eval_batch = BATCH * 2 // processes, 2 // processes
    return [
        "--model", str(model), "--dataset", str(data), "--loss_type", "infonce",
        "--per_device_train_batch_size", str(batch), "--per_device_eval_batch_size", str(eval_batch), "--max_steps", "1", "--max_length", "32",
        "--optim", "sgd", "--learning_rate", str(LEARNING_RATE), "--max_grad_norm", "0",
        "--logging_steps", "1", "--save_steps", "1", "--disable_tqdm", "true", "--output_dir", str(output_dir),
        "--split_dataset_ratio", "0.25",  # 2 rows held out: evaluation at step 1 runs under 2 processes too
    ]  # fmt: skip


def _only_run(output_dir: Path) -> Path:
    runs = [p for p in output_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run folder, got {runs}"
    return runs[0]


def _log_lines(run: Path, key: str) -> list[dict]:
    lines = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    return [line for line in lines if key in line]


def _train_line(run: Path) -> dict:
    train = _log_lines(run, "loss")
    assert len(train) == 1, f"one optimizer step, logged once (rank 0 only): {train}"
    return train[0]


@pytest.fixture(scope="module")
def runs(tiny_qwen_causal, tmp_path_factory) -> dict[str, Path]:
    """One 2-process run (NPROC_PER_NODE=2, gloo) and one 1-process run on the same data; their run folders."""
    root = tmp_path_factory.mktemp("distributed")
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps({"query": q, "response": r}) + "\n" for q, r in ROWS))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(NPROC_PER_NODE="2", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    two = subprocess.run(
        [sys.executable, "-m", "st_qwen3emb.cli", "sft", *_sft_flags(tiny_qwen_causal, data, root / "two", 2)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, f"NPROC_PER_NODE=2 run failed:\n{two.stdout[-3000:]}\n{two.stderr[-6000:]}"
    assert "torch.distributed.run" in two.stderr  # it really went through the launcher

    from st_qwen3emb.cli import main

    assert main(["sft", *_sft_flags(tiny_qwen_causal, data, root / "one", 1)]) == 0
    return {"two": _only_run(root / "two"), "one": _only_run(root / "one"), "model": tiny_qwen_causal}


@pytest.mark.slow  # two fresh worker processes import torch + transformers: ~2 min on 2 busy cores
def test_two_processes_write_one_run_from_rank_zero(runs):
    from sentence_transformers import SentenceTransformer

    run = runs["two"]
    args = json.loads((run / "args.json").read_text())
    assert args["per_device_train_batch_size"] == BATCH
    line = _train_line(run)
    assert line["global_step/max_steps"] == "1/1"
    checkpoint = run / "checkpoint-1"
    # each process saved its own RNG state into the one checkpoint folder; nothing half-written is left around
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert not [p for p in run.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    assert (run / "last-checkpoint").resolve() == checkpoint.resolve()
    embeddings = SentenceTransformer(str(run / "final")).encode(["paris", "everest"])
    assert embeddings.shape[0] == 2


@pytest.mark.slow  # two fresh worker processes import torch + transformers: ~2 min on 2 busy cores
def test_global_batch_loss_and_weights_equal_one_process(runs):
    import torch
    from safetensors.torch import load_file

    two, one = _train_line(runs["two"]), _train_line(runs["one"])
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5)

    w_two = load_file(str(runs["two"] / "final" / "model.safetensors"))
    w_one = load_file(str(runs["one"] / "final" / "model.safetensors"))
    assert w_two.keys() == w_one.keys()
    worst = max(float((w_two[k].float() - w_one[k].float()).abs().max()) for k in w_one)
    print(
        f"\nloss {two['loss']} vs {one['loss']}, grad_norm {two['grad_norm']} vs {one['grad_norm']}, max weight diff {worst}"
    )
    assert worst < 1e-5, f"2-process weights differ from the 1-process run by {worst}"

    # evaluation after the step: the infonce metrics over the whole eval set and the eval loss over the global batch
    # (step 0 is the untrained model's evaluation, the "before" of the closing summary: it has no eval_loss)
    eval_two, eval_one = _log_lines(runs["two"], "eval_margin"), _log_lines(runs["one"], "eval_margin")
    assert len(eval_two) == len(eval_one) == 2
    for key in ("eval_mean_pos", "eval_mean_neg", "eval_margin"):
        assert eval_two[0][key] == pytest.approx(eval_one[0][key], abs=1e-5), key
    for key in ("eval_loss", "eval_mean_pos", "eval_mean_neg", "eval_margin"):
        assert eval_two[1][key] == pytest.approx(eval_one[1][key], abs=1e-5), key

    initial = load_file(str(runs["model"] / "model.safetensors"))
    moved = max(
        float((w_one[k].float() - initial["model." + k].float()).abs().max()) for k in w_one if "model." + k in initial
    )
    print(f"largest weight change of the step: {moved}")
    assert moved > 1e-4, "the step must move the weights well beyond the tolerance, or the comparison proves nothing"
    assert not torch.equal(w_one["embed_tokens.weight"], initial["model.embed_tokens.weight"])


@pytest.mark.slow  # needs deepspeed (CI installs the distributed extra): ~95 s on 2 CPU cores
def test_zero3_two_processes_equal_one_process(runs, tmp_path):
    """ZeRO-3 on 2 CPU processes: the saved final model holds full weights (gathered on save, no deadlock from the
    model card's example encoding) equal to the plain 1-process run, and loads in plain sentence-transformers."""
    pytest.importorskip("deepspeed", reason="deepspeed is not installed (GPU extra)")
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    data = next(runs["one"].parent.parent.glob("train.jsonl"))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(NPROC_PER_NODE="2", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    flags = _sft_flags(runs["model"], data, tmp_path / "z3", 2) + ["--deepspeed", "zero3"]
    proc = subprocess.run(
        [sys.executable, "-m", "st_qwen3emb.cli", "sft", *flags], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    run = _only_run(tmp_path / "z3")
    w_z3 = load_file(str(run / "final" / "model.safetensors"))
    w_one = load_file(str(runs["one"] / "final" / "model.safetensors"))
    assert {k: v.shape for k, v in w_z3.items()} == {k: v.shape for k, v in w_one.items()}
    worst = max(float((w_z3[k].float() - w_one[k].float()).abs().max()) for k in w_one)
    print(f"\nZeRO-3 x2 vs 1 process: max weight diff {worst}")
    assert worst < 1e-5
    assert (run / "checkpoint-1" / "model.safetensors").is_file()
    assert SentenceTransformer(str(run / "final")).encode(["a cat"]).shape == (1, 64)


# --- launcher variables ---------------------------------------------------------------------------------------------
def test_no_variables_no_relaunch():
    assert distributed.launcher_args({}) is None
    assert distributed.relaunch_command(["--model", "m"], {}) is None


def test_single_node_gets_a_free_port_and_the_same_command():
    command = distributed.relaunch_command(["--model", "m", "--loss_type", "infonce"], {"NPROC_PER_NODE": "4"})
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=4" in command and "--nnodes=1" in command and "--master_addr=127.0.0.1" in command
    port = int(next(a for a in command if a.startswith("--master_port=")).split("=")[1])
    assert port > 0
    assert command[-7:] == ["-m", "st_qwen3emb.cli", "sft", "--model", "m", "--loss_type", "infonce"]


def test_multi_node_variables():
    env = {"NPROC_PER_NODE": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1"}
    args = distributed.launcher_args(env)
    assert args == [
        "--nproc_per_node=8", "--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"
    ]  # fmt: skip
    assert "--master_port=1234" in distributed.launcher_args({**env, "MASTER_PORT": "1234"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NPROC_PER_NODE": "two"}, "NPROC_PER_NODE"),
        ({"NPROC_PER_NODE": "0"}, "NPROC_PER_NODE"),
        ({"NPROC_PER_NODE": "2", "NNODES": "2"}, "MASTER_ADDR"),
        ({"NPROC_PER_NODE": "2", "NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "h"}, "NODE_RANK"),
    ],
)
def test_bad_launcher_variables(env, message):
    with pytest.raises(ConfigError, match=message):
        distributed.launcher_args(env)


def test_workers_and_help_never_relaunch(monkeypatch):
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    assert distributed.maybe_relaunch(["--help"]) is None
    monkeypatch.setenv("LOCAL_RANK", "0")  # inside torchrun / accelerate launch
    assert distributed.maybe_relaunch(["--model", "m"]) is None


def test_bad_variable_is_a_clear_error(monkeypatch, capsys):
    for name in ("LOCAL_RANK", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NPROC_PER_NODE", "lots")
    assert distributed.maybe_relaunch(["--model", "m"]) == 2
    assert "NPROC_PER_NODE='lots'" in capsys.readouterr().err


def test_backend_overrides(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.training_args_overrides() == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "uses_cuda", lambda: False)
    assert distributed.training_args_overrides() == {"ddp_backend": "gloo", "use_cpu": True}
    assert distributed.training_args_overrides(given=["ddp_backend"]) == {"use_cpu": True}
    monkeypatch.setattr(distributed, "uses_cuda", lambda: True)
    assert distributed.training_args_overrides() == {"ddp_backend": "nccl"}


def test_single_process_helpers(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.share_from_main(lambda: 7) == 7
    with distributed.shared_atomic_dir(tmp_path / "ckpt") as tmp:
        (tmp / "x").write_text("1")
        assert not (tmp_path / "ckpt").exists()
    assert (tmp_path / "ckpt" / "x").read_text() == "1"


# --- DeepSpeed configs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "stage"), [("zero2", 2), ("zero3", 3)])
def test_packaged_deepspeed_configs(name, stage):
    path = distributed.resolve_deepspeed_config(name, require_package=False)
    config = distributed.validate_deepspeed_config(path, expected_stage=stage)
    assert config["zero_optimization"]["stage"] == stage
    # the Trainer fills these in from its own arguments, so --per_device_train_batch_size etc. stay in charge
    for key in (
        "train_micro_batch_size_per_gpu",
        "train_batch_size",
        "gradient_accumulation_steps",
        "gradient_clipping",
    ):
        assert config[key] == "auto"
    assert config["bf16"]["enabled"] == "auto" and config["fp16"]["enabled"] == "auto"
    assert "optimizer" not in config and "scheduler" not in config  # --optim / --lr_scheduler_type keep working
    if stage == 3:
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_deepspeed_configs_with_transformers_integration():
    """The HF integration fills every ``auto`` (raises on an unknown one); checked when deepspeed is installed."""
    pytest.importorskip("deepspeed", reason="deepspeed is not installed (GPU extra); JSON checks above still ran")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    for name in distributed.DEEPSPEED_NAMES:
        hf = HfTrainerDeepSpeedConfig(distributed.resolve_deepspeed_config(name))
        assert hf.is_zero3() == (name == "zero3")


def test_deepspeed_path_and_errors(tmp_path):
    good = tmp_path / "ds.json"
    good.write_text(json.dumps({"zero_optimization": {"stage": 1}, "train_micro_batch_size_per_gpu": "auto"}))
    assert distributed.resolve_deepspeed_config(str(good), require_package=False) == str(good)
    with pytest.raises(ConfigError, match="zero2, zero3 or a JSON config file"):
        distributed.resolve_deepspeed_config("zero4", require_package=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JSON"):
        distributed.resolve_deepspeed_config(str(bad), require_package=False)
    no_gather = tmp_path / "z3.json"
    no_gather.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match="stage3_gather_16bit_weights_on_model_save"):
        distributed.resolve_deepspeed_config(str(no_gather), require_package=False)
    bad_stage = tmp_path / "s.json"
    bad_stage.write_text(json.dumps({"zero_optimization": {"stage": 5}}))
    with pytest.raises(ConfigError, match="stage must be"):
        distributed.validate_deepspeed_config(bad_stage)


def test_deepspeed_flag_without_package_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # import deepspeed -> ImportError
    with pytest.raises(ConfigError, match="pip install"):
        distributed.resolve_deepspeed_config("zero2")
