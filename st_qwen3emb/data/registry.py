"""Registered datasets and their subsets (swift's ``--dataset id:subset`` names), and Hub loading.

swift registers ``sentence-transformers/stsb`` with the subsets ``default`` (sentence1 -> anchor, sentence2 ->
positive, label = score, already 0..1 on the Hub) and ``positive`` (rows with score < 0.75 dropped; for infonce).
The STS-B release TSV layout (the local ``stsb/<split>.tsv`` copy, our packaged sample) offers the same subsets,
its 0-5 scores scaled to 0..1 first, so ``train.tsv:positive`` keeps exactly the rows the Hub subset keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

    registered = REGISTERED.get(spec.name)
    configs: tuple[str | None, ...] = (None,) if registered is not None or not spec.subsets else spec.subsets
    records: list[Record] = []
    for config in configs:
        try:
            ds = datasets.load_dataset(spec.name, config, split=split)
        except Exception as exc:  # datasets raises many types (connection, not found, offline): one clear message
            raise DatasetValidationError(
                f"{spec}: could not load {spec.name!r} (split {split!r}) from the Hugging Face Hub: "
                f"{type(exc).__name__}: {exc}\nOffline or without access, pass a local file instead "
                "(.jsonl, .json, .csv, .tsv or .parquet), e.g. st_qwen3emb.data.default_sts_sample_path()."
            ) from exc
        source = spec.name if config is None else f"{spec.name}:{config}"
        table = RawTable(f"{source} ({split})", "row", [(i, row, None) for i, row in enumerate(ds.to_list(), 1)])
        records.extend(records_from_table(table))
    if registered is not None:
        records = apply_subsets(records, registered, spec, spec.name)
    return records
