"""Training data: swift ``--dataset`` specs and file formats -> validated ``datasets.Dataset`` for a loss.

- ``load_dataset(spec, *, loss_type, seed=42, hard_negatives=None, split="train")``: the loader the trainer uses.
- ``read_records(spec)``: the format-neutral ``Record`` view (every positive and negative kept), for rerankers.
- ``parse_dataset_spec(spec)``: swift's ``[hf::|ms::]id_or_path[:subset[/subset]][#N]`` grammar.
  A path may be a file or a folder (split files ``train.tsv``/``test.tsv``..., or a BEIR folder).
- ``DatasetValidationError``: every data problem; the message names file, row (1-based) and field.
"""

from .loader import load_dataset, read_records, sample_records
from .records import DatasetValidationError, Record
from .registry import default_sts_sample_path
from .spec import DatasetSpec, parse_dataset_spec

__all__ = [
    "DatasetSpec",
    "DatasetValidationError",
    "Record",
    "default_sts_sample_path",
    "load_dataset",
    "parse_dataset_spec",
    "read_records",
    "sample_records",
]
