"""A run's history across resumes, and the scores its closing summary prints.

A resumed run starts in a new run folder; it carries the ``logging.jsonl`` lines of the run it continues (up to the
checkpoint's step), so its log and ``training_curves.png`` tell the whole story, and it keeps its own copy of a best
checkpoint that lies in the earlier folder, so deleting that folder never breaks ``best-checkpoint``.
Pure filesystem and JSON code (no torch).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from st_qwen3emb.runs import LOG_FILE, RunRecordError, atomic_dir, checkpoint_step, read_run_args

# args.json key of the metric that picks best-checkpoint (a record, not a flag: a dict, so no command repeats it)
EVAL_METRIC_KEY = "eval_metric"


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``logging.jsonl``; a torn last line (a killed process) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def record_step(record: Mapping[str, Any]) -> int:
    try:
        return int(str(record.get("global_step/max_steps", "0")).split("/")[0])
    except ValueError:
        return 0


def carry_history(checkpoint: Path, run_dir: Path) -> list[dict[str, Any]]:
    """Copy the earlier run's log lines up to ``checkpoint``'s step into ``run_dir``'s ``logging.jsonl``.

    Lines logged after the checkpoint was saved are left out: the resumed run trains those steps again.
    """
    step = checkpoint_step(checkpoint)
    if step is None:
        return []
    records = [r for r in read_log(checkpoint.parent / LOG_FILE) if record_step(r) <= step]
    if records:
        with (run_dir / LOG_FILE).open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return records


def own_checkpoint(checkpoint: Path, run_dir: Path) -> Path:
    """``checkpoint`` if it is in ``run_dir``, else a copy of it there (hard links where the filesystem allows)."""
    if checkpoint.resolve().parent == run_dir.resolve():
        return checkpoint
    target = run_dir / checkpoint.name
    if not target.exists():
        with atomic_dir(target) as tmp:
            shutil.copytree(checkpoint, tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
    return target


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # checkpoint files are never rewritten in place, so sharing them is safe
    except OSError:
        shutil.copy2(src, dst)


def score_change(records: Sequence[Mapping[str, Any]], metric: str) -> tuple[float | None, float] | None:
    """(before training, at the end) of ``metric`` in a run's log records; None when it was never measured.

    "Before" is the evaluation logged at step 0 (the untrained model), if any.
    """
    measured = [(record_step(r), r[metric]) for r in records if isinstance(r.get(metric), (int, float))]
    if not measured:
        return None
    before = next((value for step, value in measured if step == 0), None)
    return before, measured[-1][1]


def closing_scores(run_dir: Path) -> str | None:
    """The closing summary's score line: the eval metric before training and at the end, on the run's eval data."""
    try:
        args = read_run_args(run_dir) or {}
    except (OSError, RunRecordError):
        return None
    metric = (args.get(EVAL_METRIC_KEY) or {}).get("name")
    if not metric:
        return None
    change = score_change(read_log(run_dir / LOG_FILE), metric)
    if change is None:
        return f"Eval:       {metric} was not measured"
    before, after = change
    if before is None:
        return f"Eval:       {metric} {after:.4f} at the end (not measured before training)"
    return f"Eval:       {metric} {before:.4f} before training -> {after:.4f} after ({after - before:+.4f})"
