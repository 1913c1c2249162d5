"""Start-up checks of ``st-qwen3emb sft``: flags, swift's environment variables, the output folder and the
NPROC_PER_NODE launcher. Every bad input is one line on stderr and exit 2, before a model loads or a folder is made."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from st_qwen3emb.config import ConfigError, parse_args

BASE = ["--model", "m", "--dataset", "d.jsonl", "--loss_type", "infonce"]
LOSS_VARIABLES = (
    "INFONCE_TEMPERATURE", "INFONCE_USE_BATCH", "INFONCE_HARD_NEGATIVES", "INFONCE_MASK_FAKE_NEGATIVE",
    "INFONCE_FAKE_NEG_MARGIN", "INFONCE_INCLUDE_QQ", "INFONCE_INCLUDE_DD", "MAX_POSITIVE_SAMPLES",
    "MAX_NEGATIVE_SAMPLES", "LISTWISE_RERANKER_TEMPERATURE", "LISTWISE_RERANKER_MIN_GROUP_SIZE",
)  # fmt: skip
LAUNCHER_VARIABLES = ("NPROC_PER_NODE", "NNODES", "LOCAL_RANK", "RANK", "WORLD_SIZE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in LOSS_VARIABLES + LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pairs(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    rows = [("what is python", "a programming language"), ("how far is the moon", "384400 km")]
    path.write_text("".join(json.dumps({"query": q, "response": r}) + "\n" for q, r in rows))
    return path


def _no_model(monkeypatch) -> None:
    """Any model load is a test failure: the checks under test must come first."""
    import st_qwen3emb.model as model_module

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the start-up checks failed")

    monkeypatch.setattr(model_module, "load_model", refuse)


def _sft(argv: list[str], capsys) -> tuple[int, str]:
    from st_qwen3emb.cli import main

    code = main(["sft", *argv])
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("st-qwen3emb sft: error: ")
    assert "Traceback" not in err
    return lines[0]


# --- issue 14 item 1: swift's environment variables -----------------------------------------------------------------
@pytest.mark.parametrize("value", ["False", "false", "none", "None", "", "  NONE "])
def test_infonce_hard_negatives_false_or_none_means_unset(value):
    from st_qwen3emb.losses.env import resolve_infonce_options

    assert resolve_infonce_options({"INFONCE_HARD_NEGATIVES": value}).hard_negatives is None


def test_tutorial_environment_trains_data_as_unset(monkeypatch, pairs):
    from st_qwen3emb.data import load_dataset

    monkeypatch.setenv("INFONCE_HARD_NEGATIVES", "False")
    parse_args([*BASE])  # the start-up check accepts it
    assert load_dataset(str(pairs), loss_type="infonce").column_names == ["anchor", "positive"]


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("INFONCE_HARD_NEGATIVES", "True", "an integer >= 0"),
        ("INFONCE_HARD_NEGATIVES", "2.5", "an integer >= 0"),
        ("INFONCE_HARD_NEGATIVES", "-1", "an integer >= 0"),
        ("INFONCE_TEMPERATURE", "warm", "a number > 0"),
        ("INFONCE_TEMPERATURE", "nan", "a number > 0"),
        ("INFONCE_FAKE_NEG_MARGIN", "inf", "a finite number"),
        ("INFONCE_USE_BATCH", "maybe", "true or false"),
        ("INFONCE_INCLUDE_DD", "none", "true or false"),
        ("MAX_POSITIVE_SAMPLES", "True", "an integer >= 1"),
        ("MAX_POSITIVE_SAMPLES", "0", "an integer >= 1"),
        ("MAX_NEGATIVE_SAMPLES", "seven", "an integer >= 0"),
        ("LISTWISE_RERANKER_TEMPERATURE", "nan", "a number > 0"),
        ("LISTWISE_RERANKER_MIN_GROUP_SIZE", "x", "an integer >= 0"),
    ],
)
def test_bad_loss_variable_is_one_line_exit_2_before_the_model(monkeypatch, capsys, pairs, tmp_path, name, value, accepted):
    _no_model(monkeypatch)
    monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    code, err = _sft(["--model", "no/such/model/here", "--dataset", str(pairs), "--loss_type", "infonce",
                      "--output_dir", str(out)], capsys)  # fmt: skip
    line = _one_error_line(err)
    assert code == 2
    assert f"{name}={value!r}" in line and accepted in line, line
    assert not out.exists()


def test_loss_variables_are_checked_at_start_up_not_at_the_first_loss_call(monkeypatch):
    monkeypatch.setenv("INFONCE_HARD_NEGATIVES", "True")
    with pytest.raises(ConfigError, match="INFONCE_HARD_NEGATIVES"):
        parse_args(BASE)


def test_unset_words_of_every_number_variable_mean_the_default(monkeypatch):
    from st_qwen3emb.losses.env import resolve_infonce_options
    from st_qwen3emb.reranker.data import sample_limits

    for name in ("INFONCE_TEMPERATURE", "INFONCE_FAKE_NEG_MARGIN", "MAX_POSITIVE_SAMPLES", "MAX_NEGATIVE_SAMPLES"):
        monkeypatch.setenv(name, "None")
    parse_args(BASE)
    assert resolve_infonce_options().temperature == 0.1
    assert sample_limits() == (1, 7)


# --- one boolean spelling --------------------------------------------------------------------------------------------
STRTOBOOL_WORDS = ["y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0", "TRUE", "Off", " Yes "]


@pytest.mark.parametrize("word", STRTOBOOL_WORDS)
def test_one_boolean_parser_follows_transformers_strtobool(monkeypatch, word):
    from transformers.utils import strtobool

    from st_qwen3emb.cli.export import build_parser
    from st_qwen3emb.losses.env import resolve_infonce_options

    expected = bool(strtobool(word.strip()))
    assert parse_args([*BASE, "--dataloader_drop_last", word]).dataloader_drop_last is expected
    assert build_parser().parse_args(["--model", "m", "--exist_ok", word]).exist_ok is expected
    assert resolve_infonce_options({"INFONCE_USE_BATCH": word}).use_batch is expected


def test_one_boolean_parser_refuses_the_same_words(monkeypatch):
    from st_qwen3emb.cli.export import build_parser
    from st_qwen3emb.losses.env import resolve_infonce_options

    with pytest.raises(ConfigError, match="--dataloader_drop_last expects true or false"):
        parse_args([*BASE, "--dataloader_drop_last", "maybe"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "m", "--exist_ok", "maybe"])
    with pytest.raises(ValueError, match="INFONCE_USE_BATCH='maybe'.*true or false"):
        resolve_infonce_options({"INFONCE_USE_BATCH": "maybe"})


# --- issue 17 item 5: every number flag is finite and in range ------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--learning_rate", "nan"], "--learning_rate must be a finite number > 0, got nan"),
        (["--learning_rate", "inf"], "--learning_rate must be a finite number > 0"),
        (["--num_train_epochs", "nan"], "--num_train_epochs must be a finite number > 0"),
        (["--num_train_epochs", "inf"], "--num_train_epochs must be a finite number > 0"),
        (["--warmup_ratio", "nan"], "--warmup_ratio must be a finite number in [0, 1]"),
        (["--train_type", "lora", "--lora_dropout", "nan"], "--lora_dropout must be a finite number in [0, 1)"),
        (["--split_dataset_ratio", "nan"], "--split_dataset_ratio must be a finite number in [0, 1)"),
        (["--seed", "-1"], "--seed must be an integer in [0, 4294967295]"),
        (["--max_steps", "0"], "--max_steps must be an integer >= 1 (or -1: train --num_train_epochs)"),
        (["--max_steps", "-5"], "--max_steps must be an integer >= 1"),
        (["--weight_decay", "nan"], "--weight_decay must be a finite number >= 0"),
        (["--max_grad_norm", "nan"], "--max_grad_norm must be a finite number >= 0"),
        (["--adam_beta2", "1.5"], "--adam_beta2 must be a finite number in [0, 1)"),
        (["--adam_epsilon", "0"], "--adam_epsilon must be a finite number > 0"),
        (["--warmup_steps", "-1"], "--warmup_steps must be a finite number >= 0"),
        (["--save_total_limit", "0"], "--save_total_limit must be an integer >= 1"),
        (["--label_smoothing_factor", "nan"], "--label_smoothing_factor must be a finite"),
    ],
)
def test_number_flags_must_be_finite_and_in_range(flags, message):
    with pytest.raises(ConfigError) as info:
        parse_args([*BASE, *flags])
    assert message in str(info.value)


def test_good_number_flags_still_parse():
    config = parse_args([*BASE, "--max_steps", "-1", "--seed", "0", "--warmup_ratio", "1", "--max_grad_norm", "0",
                         "--learning_rate", "1e-4", "--save_total_limit", "2", "--weight_decay", "0.01"])  # fmt: skip
    assert config.training_args["max_steps"] == -1 and config.seed == 0 and math.isclose(config.learning_rate, 1e-4)


def test_nan_learning_rate_is_exit_2_and_leaves_no_run_folder(monkeypatch, capsys, pairs, tmp_path):
    _no_model(monkeypatch)
    out = tmp_path / "out"
    code, err = _sft(["--model", "m", "--dataset", str(pairs), "--loss_type", "infonce", "--learning_rate", "nan",
                      "--output_dir", str(out)], capsys)  # fmt: skip
    assert code == 2 and "--learning_rate" in _one_error_line(err)
    assert not out.exists()


# --- issue 17 item 9: --output_dir ------------------------------------------------------------------------------------
def test_output_dir_that_is_a_file_is_an_error_before_the_model(monkeypatch, capsys, pairs, tmp_path):
    _no_model(monkeypatch)
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me\n")
    for target in (a_file, a_file / "sub"):
        code, err = _sft(["--model", "no/such/model/here", "--dataset", str(pairs), "--loss_type", "infonce",
                          "--output_dir", str(target)], capsys)  # fmt: skip
        line = _one_error_line(err)
        assert code == 2 and "--output_dir" in line and "is a file" in line, line
    assert a_file.read_text() == "keep me\n"


def test_output_dir_that_cannot_be_written_is_an_error_before_the_model(monkeypatch, capsys, pairs):
    _no_model(monkeypatch)
    target = Path("/sys/st-qwen3emb-output")  # not writable, even by root
    code, err = _sft(["--model", "no/such/model/here", "--dataset", str(pairs), "--loss_type", "infonce",
                      "--output_dir", str(target)], capsys)  # fmt: skip
    line = _one_error_line(err)
    assert code == 2 and "--output_dir" in line and "cannot write" in line, line


# --- issue 14 item 6: NPROC_PER_NODE ------------------------------------------------------------------------------------
def test_one_process_is_not_relaunched():
    from st_qwen3emb import distributed

    assert distributed.relaunch_command(["--model", "m"], {"NPROC_PER_NODE": "1"}) is None
    assert distributed.relaunch_command(["--model", "m"], {"NPROC_PER_NODE": "1", "NNODES": "1"}) is None
    # several machines with one process each still need the launcher
    assert distributed.relaunch_command(["--model", "m"], {"NPROC_PER_NODE": "1", "NNODES": "2", "MASTER_ADDR": "h"})


def _no_launcher(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("torchrun was started although the input is bad")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_bad_data_file_is_the_same_one_liner_with_and_without_the_launcher(monkeypatch, capsys, tmp_path, processes):
    _no_launcher(monkeypatch)
    _no_model(monkeypatch)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "response": "r"}\n{"query": "only a query"}\n')
    monkeypatch.setenv("NPROC_PER_NODE", processes)
    code, err = _sft(["--model", "no/such/model/here", "--dataset", str(bad), "--loss_type", "infonce",
                      "--output_dir", str(tmp_path / "out")], capsys)  # fmt: skip
    line = _one_error_line(err)
    assert code == 2 and "bad.jsonl" in line, line
    assert not (tmp_path / "out").exists()


def test_bad_model_path_is_caught_in_the_launcher(monkeypatch, capsys, pairs, tmp_path):
    _no_launcher(monkeypatch)
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    code, err = _sft(["--model", str(tmp_path / "missing-model"), "--dataset", str(pairs), "--loss_type", "infonce",
                      "--output_dir", str(tmp_path / "out")], capsys)  # fmt: skip
    line = _one_error_line(err)
    assert code == 2 and "missing-model" in line, line


def test_bad_flag_for_the_loss_is_caught_in_the_launcher(monkeypatch, capsys, pairs, tmp_path):
    _no_launcher(monkeypatch)
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    code, err = _sft(["--model", "m", "--dataset", str(pairs), "--loss_type", "infonse"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "--loss_type" in line, line


def test_good_input_still_relaunches_with_nothing_printed_by_the_launcher(
    monkeypatch, capsys, caplog, tiny_qwen_causal, tmp_path
):
    started = []

    class FakeLauncher:
        def __init__(self, command):
            started.append(command)

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeLauncher)
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    data = tmp_path / "train.tsv"
    data.write_text("sentence1\tsentence2\tscore\n" + "".join(f"a{i}\tb{i}\t{4 + i % 2}.0\n" for i in range(4)))
    code, err = _sft(["--model", str(tiny_qwen_causal), "--dataset", f"{data}:positive", "--loss_type",
                      "cosine_similarity", "--output_dir", str(tmp_path / "out")], capsys)  # fmt: skip
    assert code == 0 and len(started) == 1 and "torch.distributed.run" in started[0]
    assert "warning" not in err.lower(), err  # the workers' rank 0 warns; the launcher does not repeat it
    assert not [r for r in caplog.records if ":positive" in r.getMessage()]
    assert not (tmp_path / "out").exists()


# --- issue 14 item 13: stsb:positive with cosine_similarity -----------------------------------------------------------
def test_positive_subset_with_cosine_warns_once_in_one_line(monkeypatch, capsys, caplog, tmp_path):
    _no_model(monkeypatch)
    data = tmp_path / "train.tsv"
    data.write_text("sentence1\tsentence2\tscore\n" + "".join(f"a{i}\tb{i}\t{4 + i % 2}.0\n" for i in range(4)))
    code, err = _sft(["--model", str(tmp_path / "missing-model"), "--dataset", f"{data}:positive",
                      "--loss_type", "cosine_similarity", "--output_dir", str(tmp_path / "out")], capsys)  # fmt: skip
    messages = [r.getMessage() for r in caplog.records] + err.splitlines()
    warnings = [m for m in messages if ":positive" in m and "infonce" in m]
    assert len(warnings) == 1 and "\n" not in warnings[0], messages
    assert "default" in warnings[0] and "cosine_similarity" in warnings[0]
    assert code == 2  # then the missing model, as before


def test_positive_subset_with_infonce_or_default_subset_does_not_warn(monkeypatch, capsys, tmp_path):
    from st_qwen3emb.training.sft import subset_warning

    assert subset_warning(parse_args(["--model", "m", "--dataset", "x.tsv:positive", "--loss_type", "infonce"])) is None
    assert subset_warning(parse_args(["--model", "m", "--dataset", "x.tsv", "--loss_type", "cosine_similarity"])) is None
    text = subset_warning(parse_args(["--model", "m", "--dataset", "sentence-transformers/stsb:positive",
                                      "--loss_type", "cosine_similarity"]))  # fmt: skip
    assert text and "\n" not in text and "sentence-transformers/stsb:positive" in text
