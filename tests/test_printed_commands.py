"""Every command the project prints runs as printed: next steps after training and export, the resume command on
Ctrl-C, the commands in error hints. Each is collected from the real output, split with shlex and given to the real
parser of its subcommand; where cheap it is run. Paths with spaces and shell characters survive the paste.

Also: resuming with ``--resume_from_checkpoint`` alone restores the run's flags, carries its history and keeps
``best-checkpoint`` inside the new run folder; the closing summary prints the eval score before and after.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
from pathlib import Path

import pytest
from test_training import PAIRS

from st_qwen3emb.cli import main as cli_main
from st_qwen3emb.cli.sft import main as sft_main

PROGRAM = "st-qwen3emb"
AWKWARD = "out dir's $HOME;x"  # a space, a quote and shell characters: only quoting keeps this one path


@pytest.fixture(scope="module")
def sts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sts.jsonl"
    path.write_text("".join(json.dumps({"query": a, "response": b, "label": s / 5}) + "\n" for a, b, s in PAIRS))
    return path


def _flags(model, data, out, *extra) -> list[str]:
    from st_qwen3emb.config import override_flags

    return override_flags([
        "--model", str(model), "--dataset", str(data), "--val_dataset", str(data), "--output_dir", str(out),
        "--loss_type", "cosine_similarity", "--per_device_train_batch_size", "2", "--num_train_epochs", "1",
        "--logging_steps", "1", "--learning_rate", "1e-3", "--save_steps", "2", "--max_length", "32",
        "--dataloader_num_workers", "0", "--disable_tqdm", "true",
    ], list(extra))  # fmt: skip


def printed_commands(text: str) -> list[list[str]]:
    """The st-qwen3emb command lines in printed text, as argv words (program first, any VAR=value in front kept).

    A command is the rest of a line from ``st-qwen3emb SUBCOMMAND`` on (``st-qwen3emb sft: error`` is a message
    prefix, not a command); words before it that are ``VAR=value`` belong to it.
    """
    found = []
    for line in text.splitlines():
        start = line.find(PROGRAM + " ")
        while start >= 0 and line[start + len(PROGRAM) + 1 :].split(" ", 1)[0].endswith(":"):
            start = line.find(PROGRAM + " ", start + 1)
        if start < 0:
            continue
        head = line[:start].split()
        env = []
        while head and "=" in head[-1] and head[-1].split("=", 1)[0].isupper():
            env.insert(0, head.pop())
        found.append(shlex.split(" ".join(env) + " " + line[start:], comments=True))
    return found


def parse_with_real_parser(words: list[str]) -> object:
    """Give ``words`` (a printed command) to the argparse/flag parser its subcommand runs; SystemExit fails."""
    env = [w for w in words if "=" in w and w.split("=", 1)[0].isupper() and words.index(w) < words.index(PROGRAM)]
    words = words[len(env) :]
    assert words[0] == PROGRAM, words
    sub, rest = words[1], words[2:]
    if sub == "sft":
        from st_qwen3emb.config import parse_args

        return parse_args(rest)
    if sub == "export":
        from st_qwen3emb.cli.export import build_parser

        return build_parser().parse_args(rest)
    if sub == "eval":
        from st_qwen3emb.cli.eval import build_mteb_parser, build_sts_parser

        assert rest[0] in ("sts", "mteb"), rest
        return (build_sts_parser if rest[0] == "sts" else build_mteb_parser)().parse_args(rest[1:])
    if sub in ("push", "card"):
        return None  # their parsers live inside main(); these commands are run instead (dry run / local card)
    raise AssertionError(f"unknown subcommand in printed command {words}")


def run_printed(words: list[str], capsys) -> tuple[int, str]:
    assert words[0] == PROGRAM
    code = cli_main(words[1:])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _runs(out: Path) -> list[Path]:
    return sorted((p for p in out.iterdir() if p.name.startswith("v")), key=lambda p: int(p.name[1:].split("-")[0]))


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]


# --- the builders ------------------------------------------------------------------------------------------
def test_every_builder_quotes_paths_and_parses(tmp_path):
    from st_qwen3emb import commands

    odd = tmp_path / AWKWARD / "final"
    args = {"model": str(tmp_path / "base model"), "train_type": "lora", "loss_type": "cosine_similarity",
            "dataset": [str(tmp_path / "a b.jsonl")], "val_dataset": [str(tmp_path / "a b.jsonl")],
            "output_dir": str(tmp_path / AWKWARD), "run_dir": str(odd.parent), "learning_rate": 1e-4,
            "env": {}, "train_rows": 8}  # fmt: skip
    lines = [cmd for cmd, _ in commands.after_training(args, odd, odd.with_name("final-merged"))]
    lines += [cmd for cmd, _ in commands.after_export(odd)]
    lines += [commands.export_full_model(odd, odd.with_name("x y")), commands.write_card(odd)]
    lines.append(commands.sft_command(args, resume_from=odd.parent / "checkpoint-2"))
    for line in lines:
        words = shlex.split(line, comments=True)
        assert str(odd) in words or str(odd.parent / "checkpoint-2") in words or str(odd.with_name("final-merged")) in words, line
        parse_with_real_parser(words)
    resume = parse_with_real_parser(shlex.split(lines[-1]))
    assert resume.train_type == "lora" and resume.output_dir == str(tmp_path / AWKWARD)


# --- after training, after export, in error hints ----------------------------------------------------------
@pytest.fixture(scope="module")
def full_run(tiny_qwen_causal, sts_file, tmp_path_factory):
    import io
    from contextlib import redirect_stdout

    out = tmp_path_factory.mktemp("full") / AWKWARD
    buffer = io.StringIO()
    with redirect_stdout(buffer):  # --save_steps 3: evaluated at step 3 and, being the end, at step 4
        assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "3")) == 0
    return _runs(out)[0], buffer.getvalue()


def test_next_steps_after_training_run_as_printed(full_run, capsys):
    run, printed = full_run
    next_steps = printed_commands(printed.split("Next:", 1)[1])
    assert [w[1] for w in next_steps] == ["eval", "push"], printed
    for words in next_steps:
        parse_with_real_parser(words)
        code, output = run_printed(words, capsys)
        assert code == 0, output
    results = json.loads((run / "sts_results.json").read_text())
    assert str(run / "final") in json.dumps(results)


def test_closing_summary_prints_the_score_before_and_after(full_run):
    run, printed = full_run
    records = _records(run)
    before = [r for r in records if r["global_step/max_steps"].startswith("0/") and "eval_spearman_cosine" in r]
    assert len(before) == 1, records  # the untrained model, evaluated before the first step
    after = [r for r in records if "eval_spearman_cosine" in r][-1]
    assert after["global_step/max_steps"] == "4/4"  # evaluated at the end although --eval_steps is 3
    line = next(x for x in printed.splitlines() if x.startswith("Eval:"))
    assert f"{before[0]['eval_spearman_cosine']:.4f} before training -> {after['eval_spearman_cosine']:.4f} after" in line


def test_export_prints_runnable_next_steps_and_hints(full_run, tmp_path, capsys):
    run, _ = full_run
    # merging a full checkpoint: the hint names the export command that does work
    code, output = run_printed(
        [PROGRAM, "export", "--adapters", str(run / "final"), "--merge_lora", "true"], capsys
    )
    assert code == 2
    (hint,) = printed_commands(output)
    parse_with_real_parser(hint)
    hint = [w if w != str(Path(f"{(run / 'final').resolve()}-export")) else str(tmp_path / "exp ort") for w in hint]
    code, output = run_printed(hint, capsys)
    assert code == 0, output
    steps = printed_commands(output.split("Next:", 1)[1])
    assert [w[1] for w in steps] == ["eval", "push"]
    for words in steps:
        parse_with_real_parser(words)
    code, output = run_printed(steps[-1], capsys)  # push --dry_run: no network
    assert code == 0 and "dry run" in output


def test_push_hint_to_write_a_card_runs(full_run, tmp_path, capsys):
    run, _ = full_run
    folder = tmp_path / "no card here"
    shutil.copytree(run / "final", folder)
    (folder / "README.md").unlink()
    push = [PROGRAM, "push", "--model_dir", str(folder), "--repo_id", "me/model", "--dry_run"]
    code, output = run_printed(push, capsys)
    assert code == 2
    (hint,) = printed_commands(output)
    assert hint[1] == "card"
    assert run_printed(hint, capsys)[0] == 0
    assert run_printed(push, capsys)[0] == 0


def test_lora_next_steps_merge_then_evaluate_and_push(tiny_qwen_causal, sts_file, tmp_path, capsys):
    out = tmp_path / AWKWARD
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--train_type", "lora", "--lora_rank", "4")) == 0
    steps = printed_commands(capsys.readouterr().out.split("Next:", 1)[1])
    assert [w[1] for w in steps] == ["export", "eval", "push"]
    for words in steps:
        parse_with_real_parser(words)
        code, output = run_printed(words, capsys)
        assert code == 0, output


# --- Ctrl-C and resuming -----------------------------------------------------------------------------------
def _interrupt_at(step: int, monkeypatch) -> None:
    from st_qwen3emb.training.callbacks import SignalCallback

    original = SignalCallback.on_step_end

    def interrupt(self, args, state, control, **kwargs):
        if state.global_step == step and self.received is None:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(SignalCallback, "on_step_end", interrupt)


def test_interrupt_prints_a_complete_resume_command_that_runs(tiny_qwen_causal, sts_file, tmp_path, monkeypatch, capsys):
    from st_qwen3emb.config import parse_args

    out = tmp_path / AWKWARD
    flags = _flags(tiny_qwen_causal, sts_file, out, "--learning_rate", "1e-9")  # the step-2 best stays best
    with monkeypatch.context() as patch:
        _interrupt_at(2, patch)
        assert sft_main(flags) == 128 + signal.SIGINT
    printed = capsys.readouterr().err
    assert "..." not in printed
    (resume,) = printed_commands(printed)
    first = _runs(out)[0]
    config = parse_with_real_parser(resume)
    assert config.resume_from_checkpoint == str(first / "checkpoint-2")
    expected = parse_args(flags).to_args_json()
    got = config.to_args_json()
    for name in ("model", "dataset", "val_dataset", "output_dir", "learning_rate", "save_steps", "max_length",
                 "per_device_train_batch_size", "disable_tqdm", "dataloader_num_workers"):  # fmt: skip
        assert got[name] == expected[name], name

    code, output = run_printed(resume, capsys)
    assert code == 0, output
    assert "nothing changed" in output
    second = _runs(out)[1]
    steps = [int(r["global_step/max_steps"].split("/")[0]) for r in _records(second)]
    assert steps[0] == 0 and 1 in steps and 2 in steps and steps[-1] == 4  # history before the interruption
    assert (second / "training_curves.png").stat().st_size > 1000
    best = (second / "best-checkpoint").resolve()
    assert best.parent == second.resolve() and best.is_dir()
    shutil.rmtree(first)  # deleting the earlier run must not break this one's best-checkpoint
    assert (second / "best-checkpoint").resolve().is_dir()
    assert "before training ->" in output


def test_resume_alone_restores_flags_and_lists_changes(tiny_qwen_causal, sts_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _interrupt_at(2, patch)
        assert sft_main(_flags(tiny_qwen_causal, sts_file, out)) == 128 + signal.SIGINT
    capsys.readouterr()
    first = _runs(out)[0]
    code = sft_main(["--resume_from_checkpoint", str(first), "--output_dir", str(out), "--learning_rate", "5e-4"])
    output = capsys.readouterr().out
    assert code == 0, output
    (note,) = [line for line in output.splitlines() if "resuming from" in line]
    assert note.endswith("changed: --learning_rate 0.001 -> 0.0005"), note
    args = json.loads((_runs(out)[1] / "args.json").read_text())
    assert args["val_dataset"] == [str(sts_file)] and args["max_length"] == 32 and args["learning_rate"] == 5e-4
    assert args["resume_from_checkpoint"] == str(first / "checkpoint-2")
    # `last` finds it too; a missing args.json is not needed for `last` to work, flags must still parse
    assert sft_main(["--resume_from_checkpoint", "last", "--output_dir", str(out)]) == 0


def test_own_checkpoint_copies_a_best_checkpoint_from_another_run(tmp_path):
    from st_qwen3emb.training.history import own_checkpoint

    old, new = tmp_path / "v0-20260101-000000", tmp_path / "v1-20260101-000001"
    (old / "checkpoint-2").mkdir(parents=True)
    (old / "checkpoint-2" / "model.safetensors").write_bytes(b"weights")
    new.mkdir()
    (new / "checkpoint-4").mkdir()
    assert own_checkpoint(new / "checkpoint-4", new) == new / "checkpoint-4"
    copy = own_checkpoint(old / "checkpoint-2", new)
    assert copy == new / "checkpoint-2"
    shutil.rmtree(old)
    assert (copy / "model.safetensors").read_bytes() == b"weights"


def test_eval_after_training_on_a_local_split_folder_scores_its_test_split(tiny_qwen_st, tmp_path, capsys):
    """Trained on ``folder:positive#40`` (the tutorial's subset of a train/validation/test folder): the printed eval
    scores the folder's held-out test split, so it runs offline, instead of naming the Hub's stsb."""
    from st_qwen3emb import commands

    folder = tmp_path / AWKWARD / "stsb"
    folder.mkdir(parents=True)
    rows = "".join(f"{a}\t{b}\t{s}\n" for a, b, s in PAIRS)
    for split in ("train", "validation", "test"):
        (folder / f"{split}.tsv").write_text("sentence1\tsentence2\tscore\n" + rows, encoding="utf-8")
    args = {"model": str(tiny_qwen_st), "loss_type": "infonce", "dataset": [f"{folder}:positive#40"],
            "run_dir": str(tmp_path / "run")}
    cmd, what = commands.evaluation(args, tiny_qwen_st)
    words = shlex.split(cmd)
    assert words[words.index("--dataset") + 1] == str(folder) and "test split" in what
    parse_with_real_parser(words)
    (tmp_path / "run").mkdir()
    code, output = run_printed(words, capsys)
    assert code == 0, output


def test_push_refusal_keeps_dry_run_in_the_commands_it_prints(tmp_path):
    from st_qwen3emb import commands

    merge_and_push, with_base = commands.push_lora_hints(tmp_path / "final", "me/model", dry_run=True)
    assert "--dry_run" in shlex.split(merge_and_push[1]) and "--dry_run" in shlex.split(with_base)
    merge_and_push, with_base = commands.push_lora_hints(tmp_path / "final", "me/model", dry_run=False)
    assert "--dry_run" not in merge_and_push[1] + with_base
