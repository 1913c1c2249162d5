"""swift's ``--dataset`` grammar: ``[hf::|ms::]id_or_path[:subset[/subset...]][#N]``.

A string that names an existing path is always a path, so a file whose name contains ``:`` or ``#`` still loads
(swift resolves paths first for the same reason). A leading ``~`` is the home folder. A path may be a file or a
folder (a BEIR retrieval folder, or a folder of split files such as ``train.tsv``/``validation.tsv``/``test.tsv``);
the subsets and ``#N`` apply to a folder as to a file. Every command that takes data (training, evaluation, mining)
reads its specs with this parser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .records import DatasetValidationError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    subsets: tuple[str, ...] = field(default_factory=tuple)
    sample: int | None = None
    hub: str | None = None  # "hf" / "ms" when the user forced a hub with the ``hf::`` / ``ms::`` prefix

    @property
    def is_local(self) -> bool:
        return os.path.exists(self.name)

    def __str__(self) -> str:
        subsets = f":{'/'.join(self.subsets)}" if self.subsets else ""
        sample = f"#{self.sample}" if self.sample is not None else ""
        return f"{self.name}{subsets}{sample}"


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Split a ``--dataset`` value into name, subsets and sample size; ``DatasetValidationError`` when malformed.

    >>> parse_dataset_spec("sentence-transformers/stsb:positive#500")
    DatasetSpec(name='sentence-transformers/stsb', subsets=('positive',), sample=500, hub=None)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetValidationError(f"a dataset spec must be a non-empty string, got {spec!r}")
    text = spec.strip()
    if text.startswith("~"):
        text = os.path.expanduser(text)
    if os.path.exists(text):
        return DatasetSpec(text)
    hub = None
    prefix, sep, rest = text.partition("::")
    if sep and prefix.lower() in ("hf", "ms"):
        hub, text = prefix.lower(), rest
    sample = None
    head, sep, tail = text.rpartition("#")
    if sep and not os.path.exists(text):
        count = tail.strip()
        if not (count.isascii() and count.isdigit()) or int(count) <= 0:
            raise DatasetValidationError(
                f"dataset spec {spec!r}: '#{tail}' is not a row count; '#N' takes a positive whole number "
                "of rows to sample (e.g. '#500')"
            )
        sample = int(count)
        text = head
    subsets: tuple[str, ...] = ()
    if not os.path.exists(text):
        name, sep, subset_text = text.partition(":")
        if sep:
            subsets = tuple(s.strip() for s in subset_text.split("/") if s.strip())
            if not subsets:
                raise DatasetValidationError(f"dataset spec {spec!r}: empty subset after ':'")
            text = name
    if not text.strip():
        raise DatasetValidationError(f"dataset spec {spec!r} names no dataset")
    return DatasetSpec(text.strip(), subsets, sample, hub)
