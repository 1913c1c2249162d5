"""A full disk while saving: the free-space check before ``final/``, the one-line error that names what was being
written with the space it needs, and keeping the trained weights somewhere when a save fails.

A full disk surfaces from ``torch.save`` as ``RuntimeError: basic_ios::clear: iostream error`` (or
``PytorchStreamWriter failed writing file``), from safetensors as ``IoError(... StorageFull ...)`` and from plain
writes as ``OSError`` ENOSPC; all of them become ``DiskFullError``.
"""

from __future__ import annotations

import errno
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from st_qwen3emb.checkpoint_marker import is_complete
from st_qwen3emb.runs import FINAL_DIR, atomic_dir, checkpoint_step, list_checkpoints

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = (
    "no space left on device",
    "basic_ios::clear",
    "iostream error",
    "pytorchstreamwriter failed writing",
    "storagefull",
    "disk quota exceeded",
)
_MB = 2**20


class DiskFullError(OSError):
    """The disk filled up while writing ``what``; the message says what was kept and what was lost."""

    def __init__(self, what: str, need: int, free: int, kept: str = ""):
        self.what, self.need, self.free, self.kept = what, need, free, kept
        needs = f"needs ~{_mb(need)} MB, " if need else ""
        super().__init__(
            errno.ENOSPC, f"no space left on device while writing {what} ({needs}{_mb(free)} MB free)"
            + (f"; {kept}" if kept else "")
        )

    def __str__(self) -> str:
        return self.strerror


def _mb(size: int) -> str:
    return f"{size / _MB:.1f}" if size < 10 * _MB else f"{size / _MB:.0f}"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) is the disk running out of space."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
            return True
        if any(text in str(err).lower() for text in _DISK_FULL_TEXTS):
            return True
        err = err.__cause__ or err.__context__
    return False


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def model_bytes(model: Any) -> int:
    """The bytes of the weights a save writes (a LoRA model saves only its trainable adapter)."""
    named = list(model.named_parameters())
    if any("lora_" in name for name, _ in named):
        named = [(n, p) for n, p in named if p.requires_grad]
    return sum(getattr(p, "ds_numel", p.numel()) * p.element_size() for _, p in named)


def optimizer_bytes(optimizer: Any) -> int:
    total = 0
    for state in getattr(optimizer, "state", {}).values():
        for value in state.values() if isinstance(state, dict) else ():
            if hasattr(value, "element_size"):
                total += value.numel() * value.element_size()
    return total


def save_model_folder(model: Any, target: Path, *, what: str, write_card: Callable[[Path], None] | None = None) -> None:
    """``model.save`` into ``target`` atomically; raises ``DiskFullError`` (before writing when the weights alone
    cannot fit, or when the save fails for lack of space)."""
    need = model_bytes(model)
    free = free_bytes(target.parent)
    if free < need:
        raise DiskFullError(what, need, free)
    try:
        with atomic_dir(target) as tmp:
            model.save(str(tmp))
            if write_card is not None:
                write_card(tmp)
    except Exception as err:
        if not is_disk_full(err):
            raise
        raise DiskFullError(what, need, free_bytes(target.parent)) from err


def save_final(model: Any, run_dir: Path, *, step: int, write_card: Callable[[Path], None] | None = None) -> None:
    """Write ``run_dir/final``; on a full disk the error says where the trained weights are kept, or that they are
    lost."""
    try:
        save_model_folder(model, run_dir / FINAL_DIR, what=f"{FINAL_DIR}/", write_card=write_card)
    except DiskFullError as err:
        raise DiskFullError(err.what, err.need, err.free, _kept_in_checkpoints(run_dir, step)) from err.__cause__


def _kept_in_checkpoints(run_dir: Path, step: int) -> str:
    complete = [c for c in list_checkpoints(run_dir) if is_complete(c)]
    if complete and checkpoint_step(complete[-1]) == step:
        return (f"the trained weights are kept in {complete[-1]} (a complete checkpoint of the last step; it loads "
                "like final/ would)")
    if complete:
        last = checkpoint_step(complete[-1])
        return (f"the weights of steps {last + 1}..{step} are lost; the newest complete checkpoint is {complete[-1]} "
                f"(step {last})")
    return f"no checkpoint holds them: the {step} trained steps are lost"


def checkpoint_failure(err: BaseException, trainer: Any, run_dir: Path, staging: Path) -> DiskFullError | None:
    """The ``DiskFullError`` to raise for ``err`` (a full disk during ``trainer.train``), or None to go on.

    The half-written checkpoint is removed first (it holds the space the weights need). Single process: when the
    failed checkpoint was the last step's, a warning is printed and None returned (the caller writes ``final/``,
    a third of a checkpoint's size); otherwise the weights in memory are saved without the optimizer state to
    ``run_dir/weights-step-N`` if they fit, and the error says so.
    """
    from st_qwen3emb import distributed

    step = trainer.state.global_step
    partial = staging / f"checkpoint-{step}"
    writing_checkpoint = partial.exists()
    what = f"checkpoint-{step}" if writing_checkpoint else f"the run folder (step {step})"
    need = model_bytes(trainer.model) + optimizer_bytes(trainer.optimizer) if writing_checkpoint else 0
    if trainer.args.should_save:
        shutil.rmtree(staging, ignore_errors=True)
    free = free_bytes(run_dir)
    if distributed.world_size() > 1 or not trainer.args.should_save:
        return DiskFullError(what, need, free, _kept_in_checkpoints(run_dir, step))
    if writing_checkpoint and step >= trainer.state.max_steps:
        print(f"st-qwen3emb sft: warning: {DiskFullError(what, need, free)}; training had finished, so final/ is "
              f"written from the weights in memory (the run cannot be resumed from step {step})", file=sys.stderr)
        return None
    rescue = run_dir / f"weights-step-{step}"
    try:
        save_model_folder(trainer.model, rescue, what=rescue.name)
    except DiskFullError as again:
        return DiskFullError(what, need, free, f"the weights could not be saved either ({again}); "
                             + _kept_in_checkpoints(run_dir, step))
    return DiskFullError(what, need, free, f"the weights at step {step} were saved to {rescue} without the optimizer "
                         "state (they load with SentenceTransformer; resuming from there is not possible)")
