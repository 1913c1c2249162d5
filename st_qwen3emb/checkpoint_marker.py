"""The completion marker of a checkpoint and the check that a checkpoint can be resumed from.

When a checkpoint is complete, ``checkpoint_complete.json`` is written last, listing every file in it with its
size. A checkpoint is resumable only when the marker is there, every listed file is present with that size, and the
state files parse (JSON, the safetensors header, the zip directory of ``torch.save`` files). Resuming without
``optimizer.pt`` or ``scheduler.pt`` would restart the learning-rate schedule silently; a truncated file would crash
half-way into loading with a traceback instead of a line naming it.

Pure filesystem code (no torch).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

COMPLETE_MARKER = "checkpoint_complete.json"
TRAINER_STATE = "trainer_state.json"  # transformers' TRAINER_STATE_NAME


class IncompleteCheckpoint(ValueError):
    """A checkpoint that cannot be resumed; the message names the missing or corrupt file."""


def write_marker(folder: Path, step: int) -> None:
    """List every file of the finished checkpoint ``folder`` with its size, then write the marker (last)."""
    files = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            rel = path.relative_to(folder).as_posix()
            if rel != COMPLETE_MARKER:
                files[rel] = path.stat().st_size
    tmp = folder / f".{COMPLETE_MARKER}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump({"step": step, "files": dict(sorted(files.items()))}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / COMPLETE_MARKER)


def check_checkpoint(folder: Path) -> None:
    """Raise ``IncompleteCheckpoint`` naming the first missing or corrupt file of ``folder``."""
    folder = Path(folder)
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        raise IncompleteCheckpoint(
            f"{folder} has no {COMPLETE_MARKER} (written last when a checkpoint is complete): it was not finished "
            "(the run was killed while saving it) or it was written by an older st-qwen3emb"
        )
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IncompleteCheckpoint(f"{marker} is corrupt ({err})") from None
    if TRAINER_STATE not in files:
        raise IncompleteCheckpoint(f"{folder} has no {TRAINER_STATE}, so it is not a training checkpoint")
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file():
            raise IncompleteCheckpoint(f"{path} is missing (the checkpoint's {COMPLETE_MARKER} lists it)")
        actual = path.stat().st_size
        if actual != size:
            raise IncompleteCheckpoint(f"{path} is truncated or corrupt: {actual} bytes, {size} when it was saved")
        problem = _format_problem(path)
        if problem:
            raise IncompleteCheckpoint(f"{path} is corrupt: {problem}")


def is_complete(folder: Path) -> bool:
    try:
        check_checkpoint(folder)
    except IncompleteCheckpoint:
        return False
    return True


def _format_problem(path: Path) -> str | None:
    """A cheap structural read of the state files (no tensors are loaded)."""
    suffix = path.suffix
    try:
        if suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".safetensors":
            return _safetensors_problem(path)
        elif suffix in (".pt", ".pth", ".bin") and path.stat().st_size > 0:
            with zipfile.ZipFile(path):  # torch.save's format: a truncated file has no central directory
                pass
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        return str(err) or type(err).__name__
    return None


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "no safetensors header"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return "the safetensors header runs past the end of the file"
        header = json.loads(fh.read(length))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end > size:
        return f"the tensors need {8 + length + end} bytes, the file has {size}"
    return None
