"""A cheap copy of a model folder for tests that write into it (test_hub, test_model_card)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_copy(src: Path, dst: Path, *, drop_card: bool = False) -> Path:
    """Copy ``src`` to ``dst`` with the big files hard-linked; ``drop_card`` removes the README.md copied along."""

    def link(a: str, b: str) -> None:
        # only the big files are linked: tests rewrite small ones in place, which would write through a link
        if os.path.getsize(a) < 1_000_000:
            shutil.copy2(a, b)
            return
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)
    if drop_card:
        (dst / "README.md").unlink(missing_ok=True)  # the card sentence-transformers wrote on save
    return dst
