"""The evaluation summary JSON (team contract 7), written here and read by the model card.

One file holds one result entry per (model, task); several models side by side are several entries.
Files are written to a temporary name next to the target and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FORMAT = "st-qwen3emb-eval/1"
REQUIRED_KEYS = (
    "model",
    "model_name",
    "task",
    "task_type",
    "dataset",
    "instruction",
    "main_metric",
    "main_score",
    "metrics",
    "num_texts",
    "seconds",
)


class SummaryFormatError(ValueError):
    """A summary file that does not follow contract 7; the message names the file and the entry."""


def result_entry(
    *,
    model: str,
    model_name: str,
    task: str,
    task_type: str,
    dataset: dict[str, Any],
    instruction: str | None,
    main_metric: str,
    metrics: dict[str, float],
    num_texts: int,
    seconds: float,
    **extra: Any,
) -> dict[str, Any]:
    """One contract-7 result entry; ``main_score`` is read from ``metrics`` so the two cannot disagree."""
    if main_metric not in metrics:
        raise KeyError(f"main metric {main_metric!r} is not among the measured metrics {sorted(metrics)}")
    entry: dict[str, Any] = {
        "model": str(model),
        "model_name": model_name,
        "task": task,
        "task_type": task_type,
        "dataset": {
            "name": dataset.get("name"),
            "type": dataset.get("type"),
            "split": dataset.get("split"),
            "config": dataset.get("config"),
        },
        "instruction": instruction,
        "main_metric": main_metric,
        "main_score": float(metrics[main_metric]),
        "metrics": {key: float(value) for key, value in metrics.items()},
        "num_texts": int(num_texts),
        "seconds": round(float(seconds), 3),
    }
    entry.update(extra)
    return entry


def is_summary_file(path: str | Path) -> bool:
    """Whether ``path`` is a summary file this project wrote (JSON with ``format`` set to ``FORMAT``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def check_summary_path(path: str | Path) -> None:
    """Refuse (``ReplaceRefused``) a summary path that holds a file this project did not write, or a folder."""
    from st_qwen3emb.safe_replace import check_file_replaceable

    check_file_replaceable(path, is_summary_file, what="evaluation summary")


def write_summary(results: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``results`` as a contract-7 file at ``path`` (atomically); returns the path.

    An existing file is replaced only when it is an earlier summary (``check_summary_path``).
    """
    path = Path(path)
    check_summary_path(path)
    for index, entry in enumerate(results):
        _check_entry(entry, f"result {index + 1}", path)
    document = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_summary(path: str | Path) -> dict[str, Any]:
    """Read and validate a contract-7 file; raises ``SummaryFormatError`` naming the file and entry."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SummaryFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SummaryFormatError(f"{path}: field 'format' must be {FORMAT!r}")
    results = document.get("results")
    if not isinstance(results, list):
        raise SummaryFormatError(f"{path}: field 'results' must be a list")
    for index, entry in enumerate(results):
        _check_entry(entry, f"result {index + 1}", path)
    return document


def _check_entry(entry: Any, where: str, path: Path) -> None:
    if not isinstance(entry, dict):
        raise SummaryFormatError(f"{path}: {where} is not an object")
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise SummaryFormatError(f"{path}: {where} lacks field(s) {', '.join(missing)}")
    if not isinstance(entry["metrics"], dict) or entry["main_metric"] not in entry["metrics"]:
        raise SummaryFormatError(f"{path}: {where} field 'main_metric' is not a key of 'metrics'")
    if not isinstance(entry["dataset"], dict):
        raise SummaryFormatError(f"{path}: {where} field 'dataset' must be an object")
