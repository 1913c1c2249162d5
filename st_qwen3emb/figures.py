"""Saving matplotlib figures atomically: written to a hidden temporary file, then renamed over the target.

Shared by the training curves and the STS bar chart, so a crash mid-write never leaves a half-written PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path, *, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path
