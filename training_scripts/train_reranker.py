"""Fine-tune Qwen3-Reranker as ``swift sft --task_type generative_reranker --model_type qwen3_reranker`` does.

    python training_scripts/train_reranker.py                                   # listwise, Qwen3-Reranker-0.6B
    python training_scripts/train_reranker.py --loss_type pointwise_reranker --train_type full
    python training_scripts/train_reranker.py --model /path/to/local/reranker   # offline: any local Qwen3 reranker

Data: the maniscope MS MARCO rerank set (each query, its relevant passage and 9 other candidates) for training and
the SciFact set for MRR@10 / nDCG@10 during training; pass --dataset / --eval_retrieval for your own. Any flag on
the command line replaces the recipe's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _recipe import hub_reachable  # noqa: E402

RETRIEVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval"
MODEL = "Qwen/Qwen3-Reranker-0.6B"

RECIPE = [
    "--model", MODEL,
    "--task_type", "generative_reranker", "--model_type", "qwen3_reranker",
    "--loss_type", "listwise_reranker",
    "--train_type", "lora", "--lora_rank", "16", "--lora_alpha", "32", "--lora_dropout", "0.1",
    "--dataset", f"{RETRIEVAL / 'maniscope_msmarco_rerank10'}:test",
    "--eval_retrieval", str(RETRIEVAL / "maniscope_scifact_rerank10"),
    "--num_train_epochs", "1", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2",
    "--learning_rate", "1e-4", "--max_length", "512", "--eval_steps", "25", "--save_steps", "25",
    "--output_dir", "output/reranker",
]


LORA_FLAGS = ("--lora_rank", "--lora_alpha", "--lora_dropout")


def main(argv: list[str] | None = None) -> int:
    from st_qwen3emb.cli.sft import main as sft_main
    from st_qwen3emb.config import help_text, override_flags

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(f"{__doc__}\nRecipe: {' '.join(RECIPE)}\n")
        print(help_text())
        return 0
    if "--model" not in argv and not hub_reachable():
        print(
            f"The Hugging Face Hub is not reachable, so {MODEL} cannot be downloaded, and there is no packaged "
            "reranker to fall back on. Pass a local Qwen3 reranker with --model PATH (a Qwen3ForCausalLM folder; for a "
            "smoke test, st_qwen3emb.fixtures.build_qwen3_checkpoint builds a tiny random one).",
            file=sys.stderr,
        )
        return 2
    recipe = list(RECIPE)
    if any(argv[i] in ("--train_type", "--tuner_type") and argv[i + 1:i + 2] == ["full"] for i in range(len(argv))):
        # full fine-tuning: the recipe's LoRA shape would be rejected as meaningless
        recipe = [x for i, x in enumerate(recipe) if x not in LORA_FLAGS and recipe[i - 1] not in LORA_FLAGS]
    flags = override_flags(recipe, argv)
    from st_qwen3emb.commands import command

    print(command("sft", flags), flush=True)
    return sft_main(flags)


if __name__ == "__main__":
    sys.exit(main())
