"""``load_dataset`` / ``read_records``: swift ``--dataset`` specs -> records -> a ``datasets.Dataset`` for a loss."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .folders import split_file
from .formats import SUPPORTED_EXTENSIONS, read_table, records_from_table
from .negatives import fit_negatives
from .records import DatasetValidationError, Record
from .registry import STS_SUBSETS, apply_subsets, hub_records
from .requirements import data_requirements, hard_negatives_setting
from .retrieval import is_retrieval_folder, retrieval_records
from .spec import DatasetSpec, parse_dataset_spec
from .validate import validate_for_loss

if TYPE_CHECKING:
    import datasets

def sample_records(records: list[Record], n: int, seed: int) -> list[Record]:
    """swift's ``#N``: N rows drawn without repetition; past the dataset size, whole copies plus a random rest.

    Like swift (``sample_dataset`` with its default ``shuffle_all=False``): ``N // len`` full passes in file order,
    then ``N % len`` rows from a seeded permutation; N below the size is just the first N of that permutation.
    """
    import numpy as np

    if not records:
        return []
    rng = np.random.RandomState(seed)
    full, rest = divmod(n, len(records))
    order = list(range(len(records))) * full + list(rng.permutation(len(records))[:rest])
    return [records[i] for i in order]


def _spec_records(spec: DatasetSpec, *, split: str, seed: int) -> list[Record]:
    if spec.is_local and is_retrieval_folder(spec.name):
        if len(spec.subsets) > 1:
            raise DatasetValidationError(f"{spec}: a retrieval folder takes one qrels split as its subset")
        records = retrieval_records(spec.name, spec.subsets[0] if spec.subsets else split)
    elif spec.is_local:
        path = Path(spec.name)
        table = read_table(split_file(path, split) if path.is_dir() else path)
        records = records_from_table(table)
        if table.layout == "stsb":
            records = apply_subsets(records, STS_SUBSETS, spec, "STS-B layout files")
        elif spec.subsets:
            raise DatasetValidationError(
                f"{spec}: {table.source} has no subsets (only STS-B layout .tsv files offer "
                f"{', '.join(STS_SUBSETS)}); drop ':{'/'.join(spec.subsets)}'"
            )
    elif spec.name.startswith((".", "/", "~")) or Path(spec.name).suffix.lower() in SUPPORTED_EXTENSIONS:
        raise DatasetValidationError(f"{spec.name}: no such file")
    else:
        records = hub_records(spec, split)
    if spec.sample is not None:
        records = sample_records(records, spec.sample, seed)
    return records


def _specs(spec: str | Sequence[str]) -> list[DatasetSpec]:
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not items:
        raise ValueError("no dataset given")
    return [parse_dataset_spec(os.fspath(s)) for s in items]


def read_records(spec: str | Sequence[str], *, seed: int = 42, split: str = "train") -> Iterator[Record]:
    """The format-neutral rows of one or more specs, with every positive and negative kept.

    Each source is read and checked whole before its first record is yielded, so a bad file raises
    ``DatasetValidationError`` (first problems and the count) rather than stopping half-way.
    """
    for parsed in _specs(spec):
        yield from _spec_records(parsed, split=split, seed=seed)


def load_dataset(
    spec: str | Sequence[str],
    *,
    loss_type: str,
    seed: int = 42,
    hard_negatives: int | None = None,
    split: str = "train",
) -> datasets.Dataset:
    """A ``datasets.Dataset`` with the columns ``loss_type`` needs, validated before any training starts.

    Columns: ``anchor``, ``positive`` (the first positive, as swift uses), ``negative_1..negative_k`` for losses
    that take hard negatives (count policy in ``st_qwen3emb.data.negatives``; ``hard_negatives`` or
    ``INFONCE_HARD_NEGATIVES`` fixes k), and ``label`` (float) for losses that take a label. ``split`` applies to
    Hub datasets and folders (``<folder>/<split>.tsv`` ..., or a retrieval folder's qrels; a local file is its own
    split); ``seed`` drives ``#N`` sampling and negative padding.
    """
    import datasets

    specs = _specs(spec)
    source = ", ".join(str(s) for s in specs)
    records = [rec for parsed in specs for rec in _spec_records(parsed, split=split, seed=seed)]
    req = data_requirements(loss_type)
    validate_for_loss(records, req, source)
    columns: dict[str, list] = {
        "anchor": [r.anchor for r in records],
        "positive": [r.positives[0] for r in records],
    }
    if req.label_kind == "teacher_scores":
        _add_scored_negatives(columns, records, hard_negatives)
    elif req.takes_negatives:
        k = hard_negatives if req.task == "reranker" else hard_negatives_setting(hard_negatives)
        negatives = fit_negatives(records, k, seed, source)
        for j in range(len(negatives[0]) if negatives else 0):
            columns[f"negative_{j + 1}"] = [row[j] for row in negatives]
    if req.needs_label and "label" not in columns:
        columns["label"] = [float(r.label) for r in records]
    features = datasets.Features(
        {name: datasets.Value("float64" if name == "label" else "string") for name in columns}
    )
    if isinstance(columns.get("label", [None])[0], list):
        features["label"] = datasets.Sequence(datasets.Value("float64"))
    return datasets.Dataset.from_dict(columns, features=features)


def _add_scored_negatives(columns: dict[str, list], records: list[Record], hard_negatives: int | None) -> None:
    """Negatives and their teacher scores for a distillation loss: each row keeps its first ``k`` negatives and
    scores (``k`` = ``hard_negatives``, else the smallest count of any row). Never padded by resampling: a drawn
    copy would need a score the teacher never gave."""
    k = min(len(r.negatives) for r in records) if hard_negatives is None else hard_negatives
    short = next((r for r in records if len(r.negatives) < k), None)
    if short is not None or k < 1:
        where = short.where("negative") if short is not None else "the data"
        raise DatasetValidationError(f"{where}: distillation needs {max(k, 1)} negative(s) with scores per row")
    for j in range(k):
        columns[f"negative_{j + 1}"] = [r.negatives[j] for r in records]
    columns["label"] = [[float(s) for s in r.scores[: 1 + k]] for r in records]
