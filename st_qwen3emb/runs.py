"""The swift run layout on disk: ``output_dir/v<N>-<YYYYMMDD-HHMMSS>/``, ``args.json``, atomic folder writes,
``last-checkpoint`` / ``best-checkpoint`` links, finding the checkpoint to resume from and the run a model came from.

Pure filesystem code (no torch): training writes runs with it; resume, export and the model card read them with it.
``args.json`` is written by ``write_json_atomic`` (``training.run.start_run``) and read only by ``read_run_args``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict, cast

from st_qwen3emb.checkpoint_marker import TRAINER_STATE, IncompleteCheckpoint, check_checkpoint
from st_qwen3emb.scratch import make_scratch_dir, remove_stale_scratch, scratch_path

ARGS_FILE = "args.json"
LOG_FILE = "logging.jsonl"
CURVES_FILE = "training_curves.png"
LAST_LINK = "last-checkpoint"
BEST_LINK = "best-checkpoint"
FINAL_DIR = "final"
_RUN_RE = re.compile(r"^v(\d+)-\d{8}-\d{6}$")
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def new_run_dir(output_dir: str | Path) -> Path:
    """Create and return ``output_dir/v<N>-<YYYYMMDD-HHMMSS>`` with N one above the highest existing run."""
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        run = root / f"v{max(numbers, default=-1) + 1}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            run.mkdir()
            return run
        except FileExistsError:  # another run started in the same second: take the next number
            time.sleep(0.01)


def check_output_dir(output_dir: str | Path) -> None:
    """Raise ``NotADirectoryError`` / ``PermissionError`` (one-line messages naming ``--output_dir``) unless run
    folders can be made under ``output_dir``; creates nothing that stays.

    The folder or its nearest existing parent is tried by making (and removing) a scratch folder in it, since
    ``os.access`` says yes to root on read-only mounts.
    """
    root = Path(output_dir).expanduser()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = f"--output_dir {output_dir}" if existing == root else f"--output_dir {output_dir}: {existing}"
        raise NotADirectoryError(f"{what} is a file, not a folder; pass a folder for the runs")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".st-qwen3emb-write-check-", dir=existing))
    except OSError as err:
        raise PermissionError(
            f"--output_dir {output_dir}: cannot write in {existing} ({err.strerror or err}); pass a writable folder"
        ) from None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``, on error it is removed.

    The temporary folder's name records this process and host (``st_qwen3emb.scratch``), so one left by a kill -9
    is removed by the next run; ``os.replace`` of a folder is atomic on one filesystem, so readers see the old
    folder or the new. Several processes of one distributed run share rank 0's folder (``shared_atomic_dir``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_scratch_dir(target)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def replace_dir(src: Path, target: Path) -> None:
    """Move a finished folder into place, replacing an older one of the same name (a resumed run's step)."""
    if target.exists() or target.is_symlink():
        old = scratch_path(target, "old")  # killed between the renames: the next run renames it back
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(src, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, target)


def point_link(run_dir: Path, link_name: str, checkpoint: Path) -> None:
    """Make ``run_dir/link_name`` a relative symlink to ``checkpoint`` (replaced atomically)."""
    link = run_dir / link_name
    tmp = run_dir / f".{link_name}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(checkpoint, run_dir), tmp)
    os.replace(tmp, link)


def checkpoint_step(path: str | Path) -> int | None:
    m = _CKPT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.iterdir() if p.is_dir() and not p.is_symlink() and checkpoint_step(p) is not None]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def list_runs(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    runs = [p for p in output_dir.iterdir() if p.is_dir() and _RUN_RE.match(p.name)]
    return sorted(runs, key=lambda p: int(_RUN_RE.match(p.name).group(1)))


def remove_stale_run_scratch(output_dir: str | Path) -> tuple[int, int]:
    """Scratch folders of dead processes in ``output_dir`` and its run folders: removed; (count, bytes freed)."""
    root = Path(output_dir)
    count, freed = remove_stale_scratch(root)
    for run in list_runs(root):
        n, size = remove_stale_scratch(run)
        count, freed = count + n, freed + size
    return count, freed


def _newest_complete(checkpoints: list[Path], what: str, say: Callable[[str], None]) -> Path:
    """The newest complete checkpoint of ``checkpoints`` (oldest first); says which newer ones were skipped."""
    problems = []
    for checkpoint in reversed(checkpoints):
        try:
            check_checkpoint(checkpoint)
        except IncompleteCheckpoint as err:
            problems.append(str(err))
            continue
        if problems:
            say(f"{what}: skipping {len(problems)} incomplete checkpoint(s) ({problems[0]}); resuming from "
                f"{checkpoint}, the newest complete one")
        return checkpoint
    raise IncompleteCheckpoint(f"{what}: no complete checkpoint; {problems[0]}")


def find_resume_checkpoint(spec: str, output_dir: str | Path, *, say: Callable[[str], None] = print) -> Path:
    """``--resume_from_checkpoint``: a checkpoint folder, a run folder (its newest), or ``last`` under output_dir.

    Only a complete checkpoint is returned (``checkpoint_marker.check_checkpoint``). A named checkpoint that is
    not complete raises ``IncompleteCheckpoint`` naming the file; ``last`` and a run folder fall back to the
    newest complete checkpoint and ``say`` so. Raises ``FileNotFoundError`` when there is nothing to resume.
    """
    if spec == "last":
        checkpoints = [c for run in list_runs(Path(output_dir)) for c in list_checkpoints(run)]
        if not checkpoints:
            raise FileNotFoundError(f"--resume_from_checkpoint last: no checkpoint-* folder in any run under {output_dir}")
        return _newest_complete(checkpoints, "--resume_from_checkpoint last", say)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {spec}: no such folder")
    if path.is_symlink():
        path = path.resolve()
    if checkpoint_step(path) is None and _RUN_RE.match(path.name):
        checkpoints = list_checkpoints(path)
        if not checkpoints:
            raise FileNotFoundError(f"--resume_from_checkpoint {spec}: the run has no checkpoint-* folder")
        return _newest_complete(checkpoints, f"--resume_from_checkpoint {spec}", say)
    if not (path / TRAINER_STATE).exists():
        raise FileNotFoundError(
            f"--resume_from_checkpoint {spec}: {path} has no trainer_state.json, so it is not a training checkpoint "
            "(a final model or export cannot be resumed; pass it as --model to start a new run from it)"
        )
    try:
        check_checkpoint(path)
    except IncompleteCheckpoint as err:
        raise IncompleteCheckpoint(f"--resume_from_checkpoint {spec}: {err}") from None
    return path


class RunRecord(TypedDict, total=False):
    """``args.json``: every flag of the run under its swift name (``RunConfig.to_args_json``; the keys below are the
    ones read back) plus what the run resolved. ``training.run.start_run`` writes it; resume, the closing summary, the
    card and export read it through ``read_run_args`` only."""

    model: str
    model_type: str | None
    task_type: str
    train_type: str
    loss_type: str
    dataset: list[str]
    val_dataset: list[str]
    eval_sts: list[str]
    eval_retrieval: list[str]
    output_dir: str
    learning_rate: float  # resolved (swift's default per train_type when not given)
    eval_strategy: str
    eval_steps: int | None
    max_length: int  # the model's max_seq_length
    resume_from_checkpoint: str | None
    train_rows: int
    eval_rows: int
    prompts: dict[str, str]  # per dataset column, during training and evaluation
    saved_prompts: dict[str, str]  # the prompts saved with the model
    env: dict[str, Any]  # the swift environment variables the loss read, with their values in effect
    eval_metric: dict[str, Any]  # {"name": the logged metric that picks best-checkpoint, "greater_is_better": bool}
    run_dir: str
    st_qwen3emb_version: str


class RunRecordError(ValueError):
    """A run's ``args.json`` that cannot be read; the message names the file."""


def find_run_dir(model_dir: Path) -> Path | None:
    """The training run a model folder came from: ``<run>/final`` or ``<run>/checkpoint-N`` sit in the run folder."""
    for candidate in (model_dir.parent, model_dir):
        if (candidate / ARGS_FILE).is_file() and (candidate / LOG_FILE).is_file():
            return candidate
    if (model_dir.parent / ARGS_FILE).is_file():
        return model_dir.parent
    return None


def read_run_args(folder: Path) -> RunRecord | None:
    """The ``args.json`` record in ``folder`` (a run folder), or None when it has none."""
    path = Path(folder) / ARGS_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise RunRecordError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(record, dict):
        raise RunRecordError(f"{path}: missing or not a JSON object (training run layout)")
    return cast(RunRecord, record)
