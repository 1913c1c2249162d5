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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``, on error it is removed.

    The temporary name is deterministic (several processes of one distributed run write into the same
    folder); ``os.replace`` of a folder is atomic on one filesystem, so readers see the old folder or the new.
    """
    target = Path(target)
    tmp = target.with_name(f".tmp-{target.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def replace_dir(src: Path, target: Path) -> None:
    """Move a finished folder into place, replacing an older one of the same name (a resumed run's step)."""
    if target.exists() or target.is_symlink():
        old = target.with_name(f".old-{target.name}")
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


def find_resume_checkpoint(spec: str, output_dir: str | Path) -> Path:
    """``--resume_from_checkpoint``: a checkpoint folder, a run folder (its newest), or ``last`` under output_dir."""
    if spec == "last":
        for run in reversed(list_runs(Path(output_dir))):
            checkpoints = list_checkpoints(run)
            if checkpoints:
                return checkpoints[-1]
        raise FileNotFoundError(f"--resume_from_checkpoint last: no checkpoint-* folder in any run under {output_dir}")
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {spec}: no such folder")
    if path.is_symlink():
        path = path.resolve()
    if checkpoint_step(path) is None and _RUN_RE.match(path.name):
        checkpoints = list_checkpoints(path)
        if not checkpoints:
            raise FileNotFoundError(f"--resume_from_checkpoint {spec}: the run has no checkpoint-* folder")
        path = checkpoints[-1]
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(
            f"--resume_from_checkpoint {spec}: {path} has no trainer_state.json, so it is not a training checkpoint "
            "(a final model or export cannot be resumed; pass it as --model to start a new run from it)"
        )
    return path


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


def read_run_args(folder: Path) -> dict[str, Any] | None:
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
    return record
