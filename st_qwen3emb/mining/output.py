"""The mined file: rows in swift 4.x, swift 3.x or sentence-transformers layout, written atomically.

The texts stay raw (``sft`` adds the Qwen3 prompts when it trains), so the file is the same whichever model reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

OutputFormat = Literal["swift4", "swift3", "st"]
OUTPUT_FORMATS: tuple[str, ...] = ("swift4", "swift3", "st")


def format_row(row: dict[str, Any], output_format: OutputFormat, *, with_scores: bool) -> dict[str, Any]:
    """A mined row in swift 4.x (``messages``), swift 3.x (``query/response/rejected_response``) or
    sentence-transformers (``anchor/positive/negative_1..k``) layout; the texts are raw (``sft`` adds prompts)."""
    query, positive, negatives = row["query"], row["positive"], row["negatives"]
    if output_format == "swift4":
        out: dict[str, Any] = {
            "messages": [{"role": "user", "content": query}],
            "positive_messages": [[{"role": "user", "content": positive}]],
            "negative_messages": [[{"role": "user", "content": n}] for n in negatives],
        }
    elif output_format == "swift3":
        out = {"query": query, "response": positive, "rejected_response": list(negatives)}
    elif output_format == "st":
        out = {"anchor": query, "positive": positive, **{f"negative_{i}": n for i, n in enumerate(negatives, 1)}}
    else:
        raise ValueError(f"unknown output format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if with_scores:
        out["scores"] = row["scores"]
    return out


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write JSON lines to ``path`` through a temporary file in the same folder, renamed into place at the end, so
    an interrupted run leaves no half file; an existing ``path`` is refused unless ``overwrite``."""
    import os
    import tempfile

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file should get the permissions any new file gets
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
