"""Registered datasets and their subsets (swift's ``--dataset id:subset`` names), and Hub loading.

swift registers ``sentence-transformers/stsb`` with the subsets ``default`` (sentence1 -> anchor, sentence2 ->
positive, label = score, already 0..1 on the Hub) and ``positive`` (rows with score < 0.75 dropped; for infonce).
The STS-B release TSV layout (the local ``stsb/<split>.tsv`` copy, our packaged sample) offers the same subsets,
its 0-5 scores scaled to 0..1 first, so ``train.tsv:positive`` keeps exactly the rows the Hub subset keeps.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .formats import RawTable, records_from_table
from .records import DatasetValidationError, Record
from .spec import DatasetSpec


@dataclass(frozen=True)
class Subset:
    name: str
    keep: Callable[[Record], bool] | None  # None keeps every row
    description: str


STS_SUBSETS = {
    "default": Subset("default", None, "sentence1 -> anchor, sentence2 -> positive, label = score in 0..1"),
    "positive": Subset(
        "positive",
        lambda rec: rec.label is not None and rec.label >= 0.75,
        "the default rows with score >= 0.75 (0..1 scale); meant for infonce",
    ),
}

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def default_sts_sample_path() -> Path:
    """The repository's own small STS sample (STS-B TSV layout, 0-5 scores): the offline default for STS training."""
    return SAMPLES_DIR / "sts_sample.tsv"


# Hub id -> its subsets. Subsets of unregistered Hub datasets are passed to ``datasets`` as config names.
REGISTERED: dict[str, dict[str, Subset]] = {"sentence-transformers/stsb": STS_SUBSETS}


def apply_subsets(records: list[Record], subsets: dict[str, Subset], spec: DatasetSpec, what: str) -> list[Record]:
    """Concatenate the chosen subsets (swift's ``id:a/b``); no subset means ``default``."""
    names = spec.subsets or ("default",)
    unknown = [n for n in names if n not in subsets]
    if unknown:
        raise DatasetValidationError(
            f"{spec}: unknown subset {unknown[0]!r} for {what}; available: {', '.join(subsets)}"
        )
    out: list[Record] = []
    for name in names:
        keep = subsets[name].keep
        out.extend(records if keep is None else [r for r in records if keep(r)])
    return out


def hub_records(spec: DatasetSpec, split: str) -> list[Record]:
    """Rows of a Hub dataset through ``datasets.load_dataset`` (works offline only from the local cache)."""
    import datasets

    from st_qwen3emb.hub_access import hub_unreachable_reason

    unreachable = hub_unreachable_reason()  # offline: datasets reads its cache at once instead of retrying
    registered = REGISTERED.get(spec.name)
    configs: tuple[str | None, ...] = (None,) if registered is not None or not spec.subsets else spec.subsets
    records: list[Record] = []
    for config in configs:
        try:
            ds = datasets.load_dataset(spec.name, config, split=split)
        except Exception as exc:  # datasets raises many types (connection, not found, offline): one clear message
            why = f"{unreachable} and it is not in the local cache" if unreachable else f"{type(exc).__name__}: {exc}"
            raise DatasetValidationError(
                f"{spec}: could not load {spec.name!r} (split {split!r}) from the Hugging Face Hub: {why}. "
                "Pass a local file or folder instead (.jsonl, .json, .csv, .tsv or .parquet), e.g. "
                f"{shlex.quote(str(default_sts_sample_path()))} (the packaged STS sample)"
            ) from exc
        source = spec.name if config is None else f"{spec.name}:{config}"
        table = RawTable(f"{source} ({split})", "row", [(i, row, None) for i, row in enumerate(ds.to_list(), 1)])
        records.extend(records_from_table(table))
    if registered is not None:
        records = apply_subsets(records, registered, spec, spec.name)
    return records
