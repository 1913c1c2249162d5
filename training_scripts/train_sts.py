"""Fine-tune an embedding model on STS-B with the cosine-similarity loss: the seed's recipe as defaults.

    python training_scripts/train_sts.py                       # Qwen3-Embedding-0.6B on sentence-transformers/stsb
    python training_scripts/train_sts.py --learning_rate 1e-5  # any swift flag overrides the recipe

Offline (HF_HUB_OFFLINE=1 or no network) it trains the packaged all-MiniLM-L6-v2 on the repository's small STS
sample, so the whole path runs end to end in a minute or two on a CPU.
"""

from __future__ import annotations

import sys

from _recipe import offline_model, run_recipe, sts_sample

# The seed's swift command, flag for flag.
ONLINE = [
    "--model", "Qwen/Qwen3-Embedding-0.6B", "--task_type", "embedding", "--train_type", "full",
    "--dataset", "sentence-transformers/stsb", "--split_dataset_ratio", "0.05", "--loss_type", "cosine_similarity",
    "--num_train_epochs", "5", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "4",
    "--gradient_accumulation_steps", "2", "--learning_rate", "6e-6", "--eval_strategy", "steps",
    "--eval_steps", "200", "--save_steps", "200", "--dataloader_drop_last", "true", "--label_names", "labels",
    "--output_dir", "output/sts",
]  # fmt: skip


def offline_recipe() -> list[str]:
    return [
        "--model", offline_model(), "--dataset", sts_sample(), "--split_dataset_ratio", "0.2",
        "--loss_type", "cosine_similarity", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
        "--learning_rate", "2e-5", "--eval_strategy", "steps", "--eval_steps", "3", "--save_steps", "3",
        "--logging_steps", "1", "--output_dir", "output/sts",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_recipe(ONLINE, offline_recipe(), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
