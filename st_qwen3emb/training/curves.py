"""``training_curves.png``: loss and eval metrics against steps, drawn from swift-style log records.

Kept apart from the callbacks (no transformers import) so that a short child process can draw the picture:
matplotlib would otherwise stay resident in the training process (about 30 MB) for the rest of the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from st_qwen3emb.figures import save_figure

logger = logging.getLogger(__name__)


def plot_training_curves(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss and each eval metric against steps (one panel each) from swift-style records; atomic write."""
    train = [(int(r["global_step/max_steps"].split("/")[0]), r["loss"]) for r in records if "loss" in r]
    eval_keys = sorted({k for r in records for k in r if k.startswith("eval_") and isinstance(r[k], (int, float))})
    eval_keys = [k for k in eval_keys if not k.endswith(("_runtime", "_per_second"))]
    if not train and not eval_keys:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = (["loss"] if train else []) + eval_keys
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, panels, strict=False):
        if key == "loss":
            points = train
        else:
            points = [(int(r["global_step/max_steps"].split("/")[0]), r[key]) for r in records if key in r]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def draw_in_child_process(records: list[dict[str, Any]], path: Path) -> Path | None:
    """``plot_training_curves`` in a child Python, so the training process never loads matplotlib."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=path.parent, delete=False, encoding="utf-8") as f:
        json.dump(records, f)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "st_qwen3emb.training.curves", f.name, str(path)], capture_output=True, text=True
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        logger.warning("could not draw %s: %s", path, proc.stderr.strip()[-500:])
        return None
    return path if path.exists() else None


if __name__ == "__main__":
    plot_training_curves(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")), Path(sys.argv[2]))
