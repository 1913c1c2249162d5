"""The swift flag table: parsing, aliases, pass-through TrainingArguments flags, and every bad-flag error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from st_qwen3emb.config import (
    ConfigError,
    RunConfig,
    flag_fields,
    help_text,
    infer_model_type,
    parse_args,
    parse_mrl_dims,
    resolved_learning_rate,
)

BASE = ["--model", "m", "--dataset", "d.jsonl", "--loss_type", "infonce"]


def test_seed_recipe_flags_parse():
    config = parse_args(
        [
            "--model", "Qwen/Qwen3-Embedding-0.6B", "--task_type", "embedding", "--model_type", "qwen3_emb",
            "--train_type", "full", "--dataset", "sentence-transformers/stsb", "other.jsonl#100",
            "--split_dataset_ratio", "0.05", "--eval_strategy", "steps", "--eval_steps", "200", "--save_steps", "200",
            "--num_train_epochs", "5", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "4",
            "--gradient_accumulation_steps", "2", "--learning_rate", "6e-6", "--loss_type", "cosine_similarity",
            "--label_names", "labels", "--dataloader_drop_last", "true", "--max_length", "256",
        ]
    )  # fmt: skip
    assert config.dataset == ("sentence-transformers/stsb", "other.jsonl#100")
    assert config.num_train_epochs == 5.0 and config.per_device_train_batch_size == 8
    assert config.learning_rate == 6e-6 and config.dataloader_drop_last is True
    assert config.max_length == 256 and config.label_names == ("labels",)
    assert {"eval_steps", "dataloader_drop_last", "loss_type"} <= config.explicit
    assert config.training_args == {}


def test_aliases_and_equals_syntax():
    config = parse_args([*BASE, "--tuner_type=lora", "--max_seq_length", "64", "--dtype", "bfloat16", "--lora_rank", "4"])
    assert config.train_type == "lora" and config.max_length == 64 and config.torch_dtype == "bfloat16"
    assert config.lora_rank == 4
    assert resolved_learning_rate(config) == 1e-4
    assert resolved_learning_rate(parse_args(BASE)) == 1e-5


def test_bare_boolean_and_dash_spelling():
    config = parse_args([*BASE, "--dataloader-drop-last", "--trust_remote_code", "false"])
    assert config.dataloader_drop_last is True and config.trust_remote_code is False


def test_training_arguments_pass_through_with_their_types():
    config = parse_args(
        [*BASE, "--save_strategy", "no", "--report_to", "none", "--bf16", "true", "--lr_scheduler_type", "cosine",
         "--max_steps", "7", "--weight_decay", "0.01", "--save_total_limit", "2"]
    )  # fmt: skip
    args = dict(config.training_args)
    assert args["save_strategy"] == "no" and args["lr_scheduler_type"] == "cosine"
    assert args["bf16"] is True and args["max_steps"] == 7 and args["weight_decay"] == 0.01
    assert args["save_total_limit"] == 2 and args["report_to"] == "none"
    assert config.to_args_json()["max_steps"] == 7  # args.json records them too


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*BASE, "--learnig_rate", "1e-5"], "Did you mean --learning_rate"),
        ([*BASE, "--lr_schedular_type", "cosine"], "Did you mean --lr_scheduler_type"),
        ([*BASE, "--tuner_typ", "lora"], "Did you mean --tuner_type"),
        ([*BASE, "--completely_unknown", "1"], "unknown flag --completely_unknown"),
        ([*BASE, "--per_device_train_batch_size", "eight"], "expects an integer, got 'eight'"),
        ([*BASE, "--learning_rate", "fast"], "expects a number"),
        ([*BASE, "--dataloader_drop_last", "maybe"], "expects true or false"),
        ([*BASE, "--bf16", "maybe"], "--bf16: invalid value"),
        ([*BASE, "--lr_scheduler_type", "wavy"], "--lr_scheduler_type must be one of"),
        ([*BASE, "--max_steps", "x"], "--max_steps: invalid value"),
        ([*BASE, "--train_type", "qlora"], "--train_type must be one of full, lora"),
        ([*BASE, "--train_type", "full", "--lora_rank", "8"], "only apply to --train_type lora"),
        ([*BASE, "--target_modules", "q_proj"], "only apply to --train_type lora"),
        ([*BASE, "--train_type", "full", "--tuner_type", "lora"], "given twice"),
        ([*BASE, "--max_length", "1", "--max_seq_length", "2"], "given twice"),
        ([*BASE, "--prompts", "x"], "--query_instruction"),
        (["--dataset", "d", "--loss_type", "infonce"], "--model is required"),
        (["--model", "m", "--loss_type", "infonce"], "--dataset is required"),
        (["--model", "m", "--dataset", "d"], "--loss_type is required"),
        ([*BASE, "--split_dataset_ratio", "1.5"], "--split_dataset_ratio must be a finite number in [0, 1)"),
        ([*BASE, "--val_dataset", "v", "--split_dataset_ratio", "0.1"], "not both"),
        ([*BASE, "--eval_strategy", "steps"], "needs evaluation data"),
        ([*BASE, "--per_device_train_batch_size", "0"], "must be an integer >= 1, got 0"),
        ([*BASE, "--learning_rate", "-1"], "must be a finite number > 0, got -1"),
        ([*BASE, "--mrl_dims", "{64:1}"], "--mrl_dims: mrl_dims '{64:1}' is not valid JSON"),
        ([*BASE, "--mrl_dims", '{"a": 1}'], "--mrl_dims: mrl_dims size 'a' is not a positive integer"),
        ([*BASE, "--num_train_epochs"], "expects one value"),
        (["model", *BASE], "every value belongs to a --flag"),
    ],
)
def test_bad_flags_are_errors(argv, message):
    with pytest.raises(ConfigError, match=None) as info:
        parse_args(argv)
    assert message in str(info.value)


def test_mrl_dims_forms():
    assert parse_mrl_dims('{"64": 1, "256": 0.5}') == {64: 1.0, 256: 0.5}
    assert parse_mrl_dims("[32, 16]") == {32: 1.0, 16: 1.0}


def test_model_type_inference():
    assert infer_model_type("qwen3", "embedding") == "qwen3_emb"
    assert infer_model_type("qwen3", "reranker") == "qwen3_reranker"
    assert infer_model_type("bert", "embedding") is None


def test_args_json_has_the_contract_keys():
    data = parse_args(BASE).to_args_json()
    for key in (
        "model", "task_type", "model_type", "train_type", "dataset", "val_dataset", "loss_type", "num_train_epochs",
        "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "max_length", "lora_rank",
        "lora_alpha", "lora_dropout", "target_modules", "mrl_dims", "query_instruction", "document_instruction",
        "seed", "output_dir",
    ):  # fmt: skip
        assert key in data, key
    assert data["dataset"] == ["d.jsonl"]


def test_one_table_drives_help_and_fields():
    text = help_text()
    for f in flag_fields():
        assert f"--{f.name}" in text
        for alias in f.metadata["aliases"]:
            assert f"--{alias}" in text
    assert RunConfig().train_type == "full"


def test_sft_help_does_not_import_torch():
    code = (
        "import sys; from st_qwen3emb.cli import main; rc = main(['sft', '--help']); "
        "assert rc == 0; assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--query_instruction" in result.stdout and "--tuner_type" in result.stdout


def test_override_flags_replaces_recipe_flags_and_their_aliases():
    from st_qwen3emb.config import override_flags

    recipe = ["--model", "a", "--dataset", "x", "y", "--max_length", "64", "--save_steps", "200"]
    merged = override_flags(recipe, ["--max_seq_length", "32", "--dataset", "z", "--bf16", "true"])
    assert merged == ["--model", "a", "--save_steps", "200", "--max_seq_length", "32", "--dataset", "z", "--bf16", "true"]
