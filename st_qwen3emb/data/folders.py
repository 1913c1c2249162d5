"""Dataset folders: which file of a folder a split reads.

Two folder layouts are datasets: a BEIR retrieval folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``;
read by ``retrieval.py``) and a folder of split files, one file per split named after it (``train.tsv``,
``validation.tsv``, ``test.tsv``: the STS-B release layout, as in the Hub's ``sentence-transformers/stsb``). Training
reads the ``train`` file, evaluation the ``test`` file (or the split asked for); subsets and ``#N`` of the spec then
apply to that file as to a file named directly.
"""

from __future__ import annotations

from pathlib import Path

from .formats import SUPPORTED_EXTENSIONS
from .records import DatasetValidationError
from .retrieval import RETRIEVAL_FILES

# How many of a folder's own files an error lists before it only counts the rest.
_LISTED_FILES = 8


def split_file(folder: str | Path, split: str) -> Path:
    """``<folder>/<split>.<ext>`` for the first supported extension present; an error listing what was looked for."""
    folder = Path(folder)
    candidates = [folder / f"{split}{ext}" for ext in SUPPORTED_EXTENSIONS]
    found = next((path for path in candidates if path.is_file()), None)
    if found is not None:
        return found
    present = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    shown = ", ".join(present[:_LISTED_FILES]) + (f" and {len(present) - _LISTED_FILES} more" if len(present) > _LISTED_FILES else "")
    raise DatasetValidationError(
        f"{folder}: not a dataset folder for split {split!r}; looked for "
        f"{', '.join(p.name for p in candidates)} (a folder of split files) and "
        f"{' + '.join(RETRIEVAL_FILES)} (a BEIR retrieval folder); the folder has {shown or 'no files'}"
    )
