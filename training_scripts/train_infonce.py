"""Fine-tune an embedding model with InfoNCE (in-batch and hard negatives), swift's ``--loss_type infonce``.

    python training_scripts/train_infonce.py                                   # stsb:positive pairs
    python training_scripts/train_infonce.py --dataset ../shared/data/retrieval/cranfield:test \
        --eval_retrieval ../shared/data/retrieval/cranfield                    # a BEIR folder: qrels give positives,
                                                                               # judged non-relevant docs negatives

Any swift flag overrides the recipe. Offline it uses the packaged all-MiniLM-L6-v2 and the repository's STS
sample (its ``positive`` subset).
"""

from __future__ import annotations

import sys

from _recipe import offline_model, run_recipe, sts_sample

ONLINE = [
    "--model", "Qwen/Qwen3-Embedding-0.6B", "--task_type", "embedding", "--train_type", "full",
    "--dataset", "sentence-transformers/stsb:positive", "--split_dataset_ratio", "0.05", "--loss_type", "infonce",
    "--num_train_epochs", "3", "--per_device_train_batch_size", "16", "--gradient_accumulation_steps", "1",
    "--learning_rate", "6e-6", "--eval_strategy", "steps", "--eval_steps", "100", "--save_steps", "100",
    "--dataloader_drop_last", "true", "--output_dir", "output/infonce",
]  # fmt: skip


def offline_recipe() -> list[str]:
    return [
        "--model", offline_model(), "--dataset", sts_sample() + ":positive", "--split_dataset_ratio", "0.2",
        "--loss_type", "infonce", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
        "--learning_rate", "2e-5", "--eval_strategy", "steps", "--eval_steps", "2", "--save_steps", "2",
        "--logging_steps", "1", "--output_dir", "output/infonce",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_recipe(ONLINE, offline_recipe(), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
