"""swift's ``--dataset`` grammar: ``[hf::|ms::]id_or_path[:subset[/subset...]][#N]``.

A string that names an existing path is always a path, so a file whose name contains ``:`` or ``#`` still loads
(swift resolves paths first for the same reason).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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
    """Split a ``--dataset`` value into name, subsets and sample size.

    >>> parse_dataset_spec("sentence-transformers/stsb:positive#500")
    DatasetSpec(name='sentence-transformers/stsb', subsets=('positive',), sample=500, hub=None)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a dataset spec must be a non-empty string, got {spec!r}")
    text = spec.strip()
    if os.path.exists(text):
        return DatasetSpec(text)
    hub = None
    prefix, sep, rest = text.partition("::")
    if sep and prefix.lower() in ("hf", "ms"):
        hub, text = prefix.lower(), rest
    sample = None
    head, sep, tail = text.rpartition("#")
    if sep and not os.path.exists(text):
        try:
            sample = int(tail)
        except ValueError:
            raise ValueError(f"dataset spec {spec!r}: the part after '#' must be a row count, got {tail!r}") from None
        if sample <= 0:
            raise ValueError(f"dataset spec {spec!r}: the sample size after '#' must be positive, got {sample}")
        text = head
    subsets: tuple[str, ...] = ()
    if not os.path.exists(text):
        name, sep, subset_text = text.partition(":")
        if sep:
            subsets = tuple(s.strip() for s in subset_text.split("/") if s.strip())
            if not subsets:
                raise ValueError(f"dataset spec {spec!r}: empty subset after ':'")
            text = name
    if not text.strip():
        raise ValueError(f"dataset spec {spec!r} names no dataset")
    return DatasetSpec(text.strip(), subsets, sample, hub)
