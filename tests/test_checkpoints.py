"""Checkpoints on the tiny Qwen3 model: published complete (marker last), atomic rotation, resume only from a
complete checkpoint, a full disk that keeps the trained weights, and scratch folders of killed runs swept."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
from test_training import PAIRS

from st_qwen3emb.checkpoint_marker import COMPLETE_MARKER, IncompleteCheckpoint, check_checkpoint
from st_qwen3emb.cli.sft import main as sft_main
from st_qwen3emb.config import parse_args
from st_qwen3emb.runs import find_resume_checkpoint
from st_qwen3emb.scratch import host_name, parse_scratch, remove_stale_scratch

ROWS = [(a, b, round(score / 5, 2)) for a, b, score in PAIRS]  # the training tests' pairs, labels in [0, 1]
STATE_FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json")


@pytest.fixture(scope="module")
def sts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sts.jsonl"
    path.write_text("".join(json.dumps({"query": a, "response": b, "label": s}) + "\n" for a, b, s in ROWS))
    return path


def _flags(model, data, out, *extra, epochs: int = 1) -> list[str]:
    return [
        "--model", str(model), "--dataset", str(data), "--output_dir", str(out), "--loss_type", "cosine_similarity",
        "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", "2", "--logging_steps", "1", "--learning_rate", "1e-3", "--seed", "3",
        "--dataloader_num_workers", "0", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


def _runs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.startswith("v")) if out.is_dir() else []


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".tmp-", ".trash-", ".old-")))


@pytest.fixture(scope="module")
def trained(tiny_qwen_causal, sts_file, tmp_path_factory) -> Path:
    """One finished run: 8 rows, batch 2, 4 steps, checkpoints at 2 and 4."""
    out = tmp_path_factory.mktemp("trained") / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2")) == 0
    return out


def _copy(out: Path, tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    return copy, _runs(copy)[0]


# --- item 4: complete checkpoints only ------------------------------------------------------------
def test_checkpoints_are_published_complete_with_a_marker(trained):
    run = _runs(trained)[0]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    for checkpoint in run.glob("checkpoint-*"):
        check_checkpoint(checkpoint)
        files = json.loads((checkpoint / COMPLETE_MARKER).read_text())["files"]
        assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "args.json"} <= set(files)
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert _hidden(run) == [] and _hidden(trained) == []


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("model.safetensors", _truncate),
        ("optimizer.pt", _truncate),
        ("trainer_state.json", _truncate),
        ("rng_state.pth", _truncate),
        ("optimizer.pt", Path.unlink),
        ("scheduler.pt", Path.unlink),
    ],
)
def test_resume_from_a_damaged_checkpoint_is_one_line_naming_the_file(trained, tmp_path, capsys, tiny_qwen_causal,
                                                                       sts_file, name, damage):
    out, run = _copy(trained, tmp_path)
    damage(run / "checkpoint-4" / name)
    argv = _flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2", "--resume_from_checkpoint",
                  str(run / "checkpoint-4"))
    assert sft_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err, err
    assert _runs(out) == [run]  # no new run folder


def test_a_checkpoint_without_its_marker_is_not_resumable(trained, tmp_path):
    out, run = _copy(trained, tmp_path)
    (run / "checkpoint-4" / COMPLETE_MARKER).unlink()
    with pytest.raises(IncompleteCheckpoint, match=COMPLETE_MARKER):
        find_resume_checkpoint(str(run / "checkpoint-4"), out)


def test_resume_last_falls_back_to_the_newest_complete_checkpoint(trained, tmp_path, capsys, tiny_qwen_causal,
                                                                   sts_file):
    out, run = _copy(trained, tmp_path)
    _truncate(run / "checkpoint-4" / "optimizer.pt")
    notes: list[str] = []
    assert find_resume_checkpoint("last", out, say=notes.append) == run / "checkpoint-2"
    assert len(notes) == 1 and "checkpoint-4" in notes[0] and "optimizer.pt" in notes[0]
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2", "--resume_from_checkpoint", "last")) == 0
    err = capsys.readouterr().err
    assert "optimizer.pt" in err and "resuming from" in err and "checkpoint-2" in err
    second = _runs(out)[1]
    assert json.loads((second / "args.json").read_text())["resume_from_checkpoint"].endswith("checkpoint-2")


# --- item 3: rotation renames to hidden trash before deleting ------------------------------------------
class Killed(BaseException):
    """Stands in for a kill -9 in the middle of deleting a folder."""


def test_rotation_killed_mid_delete_leaves_no_half_checkpoint(tiny_qwen_causal, sts_file, tmp_path, monkeypatch):
    from st_qwen3emb.training.sft import train

    real_rmtree = shutil.rmtree
    calls = []

    def rmtree_killed_half_way(path, *args, **kwargs):
        path = Path(path)
        if "checkpoint-" in path.name and not calls:
            calls.append(path)
            (path / "optimizer.pt").unlink()  # the first files are gone when the kill comes
            raise Killed
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree_killed_half_way)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out = tmp_path / "out"
    try:
        with pytest.raises(Killed):
            train(parse_args(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "1", "--save_total_limit", "2")))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    run = _runs(out)[0]
    visible = sorted(run.glob("checkpoint-*"))
    assert calls and visible
    for checkpoint in visible:  # every visible checkpoint still has all its state files
        assert all((checkpoint / name).is_file() for name in STATE_FILES), checkpoint
        check_checkpoint(checkpoint)


# --- item 2: a full disk --------------------------------------------------------------------------------
def _failing_torch_save(monkeypatch, error: BaseException, *, step: int | None = None) -> None:
    import torch

    real = torch.save

    def save(obj, f, *args, **kwargs):
        path = str(f)
        if path.endswith("optimizer.pt") and (step is None or f"checkpoint-{step}" in path):
            raise error
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_disk_full_at_the_last_checkpoint_still_writes_final(tiny_qwen_causal, sts_file, tmp_path, monkeypatch, capsys):
    from sentence_transformers import SentenceTransformer

    _failing_torch_save(monkeypatch, RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 320 vs "
                                                  "256\nbasic_ios::clear: iostream error"))
    out = tmp_path / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "1000")) == 0
    err = capsys.readouterr().err
    assert "no space left on device while writing checkpoint-4 (needs ~" in err and "MB free)" in err, err
    run = _runs(out)[0]
    assert SentenceTransformer(str(run / "final")).encode(["a"]).shape[0] == 1
    assert not list(run.glob("checkpoint-*")) and _hidden(run) == []


def test_disk_full_mid_run_keeps_the_weights_and_says_so(tiny_qwen_causal, sts_file, tmp_path, monkeypatch, capsys):
    from sentence_transformers import SentenceTransformer

    _failing_torch_save(monkeypatch, OSError(errno.ENOSPC, "No space left on device"), step=2)
    out = tmp_path / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2")) == 1
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("st-qwen3emb sft:")]
    assert len(ours) == 1, ours
    err = ours[0]
    assert err.startswith("st-qwen3emb sft: error: no space left on device while writing checkpoint-2 (needs ~"), err
    run = _runs(out)[0]
    assert f"saved to {run / 'weights-step-2'}" in err
    SentenceTransformer(str(run / "weights-step-2"))
    assert not list(run.glob("checkpoint-*")) and not (run / "final").exists() and _hidden(run) == []


def test_too_little_space_for_final_names_where_the_weights_are(tiny_qwen_causal, sts_file, tmp_path, monkeypatch,
                                                                 capsys):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))  # 1 MB free
    out = tmp_path / "out"
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2")) == 1
    err = capsys.readouterr().err.strip()
    run = _runs(out)[0]
    assert "no space left on device while writing final/ (needs ~" in err and "1.0 MB free)" in err, err
    assert f"kept in {run / 'checkpoint-4'}" in err
    assert not (run / "final").exists() and _hidden(run) == []


# --- item 12: scratch of killed runs -------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _scratch(folder: Path, name: str, size: int = 0) -> Path:
    path = folder / name
    (path / "checkpoint-3").mkdir(parents=True)
    (path / "checkpoint-3" / "model.safetensors").write_bytes(b"\0" * size)
    return path


def test_next_run_removes_scratch_of_dead_processes_only(trained, tmp_path, capsys, tiny_qwen_causal, sts_file):
    out, run = _copy(trained, tmp_path)
    dead, host = _dead_pid(), host_name()
    stale = [
        _scratch(run, f".tmp-checkpoints@{host}.{dead}", 2**20),
        _scratch(run, f".trash-checkpoint-1@{host}.{dead}", 2**20),
        _scratch(run, f".old-checkpoint-2@{host}.{dead}"),  # checkpoint-2 exists: the old copy goes
        _scratch(out, f".tmp-exported@{host}.{dead}", 2**20),
    ]
    kept = [
        _scratch(run, f".tmp-final@{host}.{os.getpid()}"),  # a live process
        _scratch(run, f".tmp-checkpoints@other-host.{dead}"),  # cannot tell on another host
        _scratch(run, ".tmp-checkpoint-9"),  # not a name this project writes
        _scratch(out, f"tmp-final@{host}.{dead}"),  # not hidden: not ours
    ]
    assert sft_main(_flags(tiny_qwen_causal, sts_file, out, "--save_steps", "2", "--max_steps", "1")) == 0
    err = capsys.readouterr().err
    assert "removed 4 scratch folder(s)" in err and "(3.0 MB freed)" in err, err
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


def test_an_old_copy_whose_replacement_never_arrived_is_restored(tmp_path):
    old = _scratch(tmp_path, f".old-final@{host_name()}.{_dead_pid()}")
    assert parse_scratch(old).kind == "old"
    assert remove_stale_scratch(tmp_path) == (1, 0)
    assert (tmp_path / "final" / "checkpoint-3").is_dir() and not old.exists()


# --- acceptance: kill -9 loop -------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_9_loop_leaves_only_complete_resumable_checkpoints(tiny_qwen_causal, tmp_path):
    """~20 kill -9 at random moments of a --save_steps 1 --save_total_limit 2 run, each restart resuming from
    ``last``: every visible checkpoint is complete and resumes; no scratch folder survives the next run."""
    from sentence_transformers import SentenceTransformer

    data = tmp_path / "sts.jsonl"
    data.write_text("".join(json.dumps({"query": a, "response": b, "label": s}) + "\n" for a, b, s in ROWS * 4))
    out = tmp_path / "out"
    base = [sys.executable, "-m", "st_qwen3emb.cli", "sft",
            *_flags(tiny_qwen_causal, data, out, "--save_steps", "1", "--save_total_limit", "2", epochs=4)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    rng = random.Random(17)
    deadline = time.monotonic() + 600
    kills = 0

    def command() -> list[str]:
        has_checkpoint = any(any(run.glob("checkpoint-*")) for run in _runs(out))
        return base + (["--resume_from_checkpoint", "last"] if has_checkpoint else [])

    def check_visible() -> None:
        for run in _runs(out):
            for checkpoint in run.glob("checkpoint-*"):
                check_checkpoint(checkpoint)
                assert all((checkpoint / name).is_file() for name in STATE_FILES), checkpoint

    while kills < 20 and time.monotonic() < deadline:
        child = subprocess.Popen(command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until training has started saving, then kill at a random moment among the saves
        started = time.monotonic()
        while child.poll() is None and time.monotonic() - started < 120:
            if any(run.glob("logging.jsonl") for run in _runs(out)) and any(
                (run / "logging.jsonl").stat().st_mtime >= started for run in _runs(out) if (run / "logging.jsonl").exists()
            ):
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        if child.returncode not in (0, -signal.SIGKILL):
            pytest.fail(f"the run failed (exit {child.returncode}): {child.stderr.read().decode()[-2000:]}")
        child.stderr.close()
        check_visible()
    assert kills >= 10, kills
    final = subprocess.run(command(), env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    check_visible()
    for folder in [out, *_runs(out)]:
        assert not [p for p in folder.iterdir() if parse_scratch(p)], list(folder.iterdir())
    newest = _runs(out)[-1]
    assert SentenceTransformer(str(newest / "final")).encode(["a"]).shape[0] == 1
    for checkpoint in newest.glob("checkpoint-*"):
        SentenceTransformer(str(checkpoint))  # loads completely
