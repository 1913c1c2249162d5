"""The steps every export takes, whatever the model family (``export`` for embeddings, ``reranker.export``).

Find the run and the adapter's base model, stage a loadable copy of the checkpoint, check that the outputs did not
move, and mark the finished folder as an export (what ``--exist_ok`` may replace, ``st_qwen3emb.safe_replace``) so an
export either reproduces its checkpoint or does not appear.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb import lora
from st_qwen3emb.model_card import CARD_FILENAME, CURVES_FILENAME
from st_qwen3emb.runs import RunRecordError, find_run_dir, read_run_args
from st_qwen3emb.safe_replace import check_replaceable, replace_folder, write_marker
from st_qwen3emb.scratch import make_scratch_dir

if TYPE_CHECKING:
    import numpy as np

# The kind recorded in the marker of every export folder (embedding or reranker): what --exist_ok may replace.
EXPORT_KIND = "export"
# Training state that a checkpoint may hold and an export never needs.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin", "trainer_state.json", "*.tmp")


class ExportError(ValueError):
    """An export that cannot be done as asked; the message says why and what to pass instead."""


def run_args(checkpoint: Path) -> dict[str, Any]:
    """The args.json record of the run ``checkpoint`` came from (in it, or in its run folder); ``{}`` when none."""
    for folder in (checkpoint, find_run_dir(checkpoint)):
        if folder is None:
            continue
        try:
            record = read_run_args(folder)
        except RunRecordError as err:
            raise ExportError(str(err)) from err
        if record is not None:
            return record
    return {}


def default_output_dir(checkpoint: Path, merge: bool) -> Path:
    """swift's default: ``<checkpoint>-merged`` for a merge; ``<checkpoint>-export`` for a full checkpoint."""
    resolved = checkpoint.resolve()
    return resolved.with_name(resolved.name + ("-merged" if merge else "-export"))


def resolve_base_model(checkpoint: Path, base_model: str | None) -> str:
    """The base model an adapter applies to: ``base_model`` if given, else the adapter config's, else args.json's.

    Refuses with the path it wanted when that base cannot be found, before anything is loaded.
    """
    from st_qwen3emb.model import ModelLoadError, resolve_local_folder

    if base_model:
        wanted, source = base_model, "--model"
    else:
        wanted = lora.read_adapter_config(checkpoint).get("base_model_name_or_path")
        source = f"base_model_name_or_path in {checkpoint / lora.ADAPTER_CONFIG}"
        if not wanted:
            wanted = run_args(checkpoint).get("model")
            source = "model in args.json"
    if not wanted:
        raise ExportError(
            f"{checkpoint} does not say which base model its adapter belongs to; pass it with --model PATH_OR_HUB_ID"
        )
    hint = "Pass the base model with --model PATH_OR_HUB_ID (the model the adapter was trained on)."
    try:
        folder = resolve_local_folder(wanted)
    except ModelLoadError as err:
        raise ExportError(f"the adapter's base model {wanted!r} (from {source}) was not found: {err}. {hint}") from err
    if folder is not None:
        return str(folder.resolve())
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(wanted)
    except (OSError, ValueError) as err:
        raise ExportError(
            f"the adapter's base model {wanted!r} (from {source}) is neither a local folder nor reachable on the "
            f"Hugging Face Hub (offline, or not in the cache): {err}. {hint}"
        ) from err
    return wanted


def stage_checkpoint(checkpoint: Path, staged: Path, base_model: str) -> None:
    """A copy of the checkpoint whose adapter config names the resolved base, for sentence-transformers to load."""
    shutil.copytree(checkpoint, staged, ignore=shutil.ignore_patterns(*_TRAINING_STATE), symlinks=False)
    config_path = staged / lora.ADAPTER_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def tolerance(model: Any, *, float32: float = 1e-5, half: float = 2e-2) -> float:
    """How far the probe outputs may move: ``float32`` for a float32 model, else ``half``."""
    import torch

    # Merging in half precision rounds each merged weight once; float32 merges are exact to ~1e-7.
    return float32 if next(model.parameters()).dtype == torch.float32 else half


def assert_same(expected: np.ndarray, got: np.ndarray, tol: float, what: str, outputs: str = "the embeddings") -> None:
    import numpy as np

    diff = float(np.max(np.abs(expected - got)))
    if not diff <= tol:
        raise ExportError(f"{what} changed {outputs} (max abs difference {diff:.2e} > {tol:.0e}); nothing exported")


def mark_as_export(folder: Path) -> None:
    """The marker that lets a later ``--exist_ok true`` replace this folder (the card's files may be added later)."""
    write_marker(folder, kind=EXPORT_KIND, may_add=(CARD_FILENAME, CURVES_FILENAME))


def output_folder(checkpoint: Path, output_dir: str | Path | None, *, merge: bool, exist_ok: bool) -> Path:
    """Where the export of ``checkpoint`` goes, checked before anything is built: never inside the checkpoint, and
    an existing folder only when ``safe_replace`` allows replacing it."""
    output = (Path(output_dir).expanduser() if output_dir else default_output_dir(checkpoint, merge)).resolve()
    if output == checkpoint.resolve() or output in checkpoint.resolve().parents:
        raise ExportError(f"the output {output} would overwrite the checkpoint it is exported from")
    check_replaceable(output, kind=EXPORT_KIND, exist_ok=exist_ok)
    return output


def build_in_place(output: Path, build: Callable[[Path, Path], None], *, exist_ok: bool) -> None:
    """``build(built, scratch)`` into a scratch folder beside ``output``, then swap it in (``replace_folder``): the
    folder appears only complete, and a failed build leaves what was there. The scratch folder is named with this
    pid and host, so a killed export's is swept by the next run."""
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = make_scratch_dir(output)
    try:
        built = scratch / "model"
        build(built, scratch)
        replace_folder(built, output, kind=EXPORT_KIND, exist_ok=exist_ok, scratch=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
