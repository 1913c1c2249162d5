"""``st-qwen3emb export``: swift's ``export`` flags -> ``st_qwen3emb.export.export``."""

from __future__ import annotations

import argparse
import logging
import sys

from st_qwen3emb import commands
from st_qwen3emb.booleans import parse_bool
from st_qwen3emb.config import RERANKER_TASK_TYPES
from st_qwen3emb.export import FORMATS, export
from st_qwen3emb.export_steps import ExportError
from st_qwen3emb.lora import LoraError
from st_qwen3emb.safe_replace import ReplaceRefused


def _bool_flag(value: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="st-qwen3emb export",
        description=(
            "Merge a LoRA checkpoint (--adapters CKPT --merge_lora true) or export a full fine-tuning checkpoint "
            "(--model CKPT) as a plain sentence-transformers folder."
        ),
    )
    parser.add_argument("--adapters", nargs="+", help="the LoRA checkpoint folder (swift: --adapters)")
    parser.add_argument("--model", help="a full checkpoint to export; with --adapters: the adapter's base model")
    parser.add_argument("--merge_lora", type=_bool_flag, default=None, help="merge the adapter (default: true for --adapters)")
    parser.add_argument("--output_dir", help="the output folder (default: <CKPT>-merged, or <CKPT>-export)")
    parser.add_argument("--format", choices=FORMATS + ("seq-cls",), default="portable",
                        help="portable (sentence-transformers 6) or legacy (pre-5.4 layout); seq-cls for rerankers")
    parser.add_argument("--exist_ok", type=_bool_flag, default=False, help="replace an existing output folder")
    parser.add_argument("--safe_serialization", type=_bool_flag, default=True, help="write safetensors (default true)")
    parser.add_argument("--task_type", default="embedding", help="embedding, or generative_reranker / reranker")
    parser.add_argument("--trust_remote_code", type=_bool_flag, default=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.adapters and len(args.adapters) > 1:
        parser.error("one adapter checkpoint at a time: --adapters CKPT")
    if args.adapters:
        checkpoint, base = args.adapters[0], args.model
    elif args.model:
        checkpoint, base = args.model, None
    else:
        parser.error("pass --adapters CKPT (LoRA) or --model CKPT (full fine-tuning checkpoint)")
    if args.format == "seq-cls" and args.task_type not in RERANKER_TASK_TYPES:
        parser.error("--format seq-cls is for rerankers: add --task_type generative_reranker")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from st_qwen3emb.model import ModelLoadError

    try:
        out = export(
            checkpoint, args.output_dir, merge_lora=args.merge_lora, base_model=base, format=args.format,
            exist_ok=args.exist_ok, safe_serialization=args.safe_serialization, task_type=args.task_type,
            trust_remote_code=args.trust_remote_code,
        )
    except (ExportError, LoraError, ReplaceRefused, ModelLoadError) as err:  # bad input: one line, exit 2
        print(f"st-qwen3emb export: {err}", file=sys.stderr)
        return 2
    print(out)
    print("Next:", *commands.format_steps(commands.after_export(out, args.task_type)), sep="\n")
    return 0
