"""``st-qwen3emb card``: write the model card of a model folder (``st_qwen3emb.model_card.write_model_card``)."""

from __future__ import annotations

import argparse
import sys

from st_qwen3emb.config import RERANKER_TASK_TYPES
from st_qwen3emb.model_card import CardInputError, check_base_model_name, write_model_card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="st-qwen3emb card", description="Write the model card (README.md).")
    parser.add_argument("--model_dir", required=True, help="the exported sentence-transformers folder")
    parser.add_argument("--run_dir", help="the training run folder (default: found from model_dir)")
    parser.add_argument("--eval", dest="eval_files", nargs="+", action="extend", default=[], metavar="RESULTS_JSON",
                        help="evaluation summaries written by st-qwen3emb eval")
    parser.add_argument("--base_model", help="the base model's Hub id (default: from args.json)")
    parser.add_argument("--task_type", choices=("embedding", *RERANKER_TASK_TYPES),
                        help="default: the run's task_type, or reranker for a CrossEncoder folder, else embedding")
    parser.add_argument("--keep_paths", action="store_true",
                        help="publish local paths whole (default: only their final component, e.g. the file name)")
    options = parser.parse_args(argv)
    try:
        if options.base_model is not None:
            check_base_model_name(options.base_model)
        path = write_model_card(
            options.model_dir,
            run_dir=options.run_dir,
            eval_files=options.eval_files,
            base_model=options.base_model,
            task_type=options.task_type,
            keep_paths=options.keep_paths,
        )
    except CardInputError as err:
        print(f"st-qwen3emb card: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
