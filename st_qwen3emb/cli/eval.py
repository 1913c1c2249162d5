"""``st-qwen3emb eval sts|mteb`` and the ``evaluation_scripts/eval_sts.py`` / ``evaluation_scripts/run_mteb.py`` scripts.

Both entry points share the parsers here; the work is done in ``sts.py`` and ``mteb_runner.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USAGE = """usage: st-qwen3emb eval {sts,mteb} [FLAGS]

  sts    Pearson/Spearman on STS data for one or more models (table, JSON, bar chart)
  mteb   mteb tasks or benchmarks, or local STS/retrieval/reranking files, with the Qwen3 protocol

Run 'st-qwen3emb eval sts --help' or 'st-qwen3emb eval mteb --help' for the flags."""

# The spellings from before the flags took swift's --snake_case style, accepted for one more release with a warning.
DEPRECATED_SPELLINGS = {
    "--batch-size": "--batch_size",
    "--no-instruction": "--no_instruction",
    "--no-progress": "--no_progress",
    "--local-sts": "--local_sts",
    "--local-retrieval": "--local_retrieval",
    "--local-reranking": "--local_reranking",
    "--reuse-results": "--reuse_results",
    "--output-folder": "--output_folder",
}


def respell(argv: list[str] | None, prog: str) -> list[str]:
    """``argv`` with each old ``--kebab-case`` flag in its ``--snake_case`` spelling, one warning line per old flag."""
    argv = list(sys.argv[1:] if argv is None else argv)
    result = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if flag in DEPRECATED_SPELLINGS:
            new = DEPRECATED_SPELLINGS[flag]
            print(f"{prog}: warning: {flag} is deprecated; use {new} (the old spelling goes in the next release)",
                  file=sys.stderr)
            arg = new + eq + value
        result.append(arg)
    return result


def _add_instruction_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--instruction",
        help="instruction to use instead of the default (Qwen3: wrapped as 'Instruct: TEXT\\nQuery:'; "
        "other models: used as a plain prefix)",
    )
    group.add_argument("--no_instruction", action="store_true", help="encode with no instruction at all")


def build_sts_parser(prog: str = "eval_sts.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="STS evaluation: Pearson and Spearman for cosine, Euclidean, Manhattan and dot similarity. "
        "Qwen3 models get the official STS instruction on both sides unless told otherwise; other models none.",
    )
    parser.add_argument("--model", nargs="+", required=True, help="model folder(s) or Hub id(s), side by side")
    parser.add_argument(
        "--dataset",
        nargs="+",
        default=["stsb"],
        help="'stsb' (Hub sentence-transformers/stsb), a Hub id, or a local TSV/CSV/JSONL file or folder "
        "with sentence1, sentence2, score (0-5 or 0-1); each [:subset][#N] as in 'sft --dataset'",
    )
    parser.add_argument("--split", default="test", help="split of a Hub dataset, or the file <split>.tsv of a folder")
    _add_instruction_flags(parser)
    parser.add_argument("--output", default="sts_results.json", help="summary JSON; the bar chart goes next to it")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    return parser


def build_mteb_parser(prog: str = "run_mteb.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run mteb with the official Qwen3 instruction protocol, under the model's own name and revision.",
    )
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--revision", default=None, help="Hub revision (also the revision results are filed under)")
    parser.add_argument("--tasks", nargs="+", default=None, help="mteb task names, e.g. STSBenchmark SICK-R")
    parser.add_argument("--benchmark", default=None, help="an mteb benchmark name, e.g. 'MTEB(eng, v2)'")
    parser.add_argument("--local_sts", nargs="+", default=None, metavar="PATH", help="STS-B-layout file or folder")
    parser.add_argument("--local_retrieval", nargs="+", default=None, metavar="DIR", help="BEIR folder")
    parser.add_argument(
        "--local_reranking", nargs="+", default=None, metavar="DIR", help="BEIR folder with candidates.jsonl"
    )
    parser.add_argument("--split", default="test", help="split of the local tasks")
    parser.add_argument("--output_folder", default="mteb_results", help="mteb results folder")
    parser.add_argument("--summary", default=None, help="summary JSON (default: OUTPUT_FOLDER/summary.json)")
    _add_instruction_flags(parser)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--reuse_results",
        action="store_true",
        help="keep results already in OUTPUT_FOLDER for this model name and revision instead of recomputing",
    )
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from st_qwen3emb.evaluation.local_tasks import LocalTaskError
    from st_qwen3emb.evaluation.mteb_runner import TaskDataUnavailableError, UnknownTaskError
    from st_qwen3emb.evaluation.sts import STSDataError
    from st_qwen3emb.model import ModelLoadError
    from st_qwen3emb.safe_replace import ReplaceRefused

    return (STSDataError, LocalTaskError, UnknownTaskError, TaskDataUnavailableError, ModelLoadError, ReplaceRefused)


def _check_outputs(summary: str | Path, chart: Path | None = None) -> None:
    """Before any model loads: the outputs may overwrite only files this project wrote (``safe_replace``)."""
    from st_qwen3emb.evaluation.summary import check_summary_path, is_summary_file
    from st_qwen3emb.safe_replace import check_file_replaceable

    check_summary_path(summary)
    if chart is not None:  # the chart was written with the summary beside it
        check_file_replaceable(chart, lambda _: is_summary_file(summary), what="evaluation chart")


def _encoding_options(args: argparse.Namespace) -> dict:
    """The flags both modes pass on unchanged: instruction choice, batch size, device, progress bars."""
    return {
        "instruction": args.instruction,
        "no_instruction": args.no_instruction,
        "batch_size": args.batch_size,
        "device": args.device,
        "show_progress_bar": not args.no_progress,
    }


def sts_main(argv: list[str] | None = None, prog: str = "eval_sts.py") -> int:
    args = build_sts_parser(prog).parse_args(respell(argv, prog))
    from st_qwen3emb.evaluation.sts import format_table, plot_results, run_sts
    from st_qwen3emb.evaluation.summary import write_summary

    try:
        _check_outputs(args.output, Path(args.output).with_suffix(".png"))
        results = run_sts(
            args.model,
            args.dataset,
            split=args.split,
            **_encoding_options(args),
        )
    except _user_errors() as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    output = write_summary(results, args.output)
    chart = plot_results(results, Path(output).with_suffix(".png"))
    print(f"\nwrote {output} and {chart}")
    return 0


def mteb_main(argv: list[str] | None = None, prog: str = "run_mteb.py") -> int:
    args = build_mteb_parser(prog).parse_args(respell(argv, prog))
    from st_qwen3emb.evaluation.mteb_runner import SUMMARY_NAME, resolve_tasks, run_mteb

    try:
        _check_outputs(args.summary or Path(args.output_folder) / SUMMARY_NAME)
        tasks = resolve_tasks(
            args.tasks,
            benchmark=args.benchmark,
            local_sts=args.local_sts,
            local_retrieval=args.local_retrieval,
            local_reranking=args.local_reranking,
            split=args.split,
        )
        entries = run_mteb(
            args.model,
            tasks,
            output_folder=args.output_folder,
            revision=args.revision,
            reuse_results=args.reuse_results,
            **_encoding_options(args),
            summary_path=args.summary,
        )
    except (*_user_errors(), ValueError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    width = max(len(e["task"]) for e in entries)
    for entry in entries:
        prompt = repr(entry["prompt"]) if entry.get("prompt") else "none"
        print(
            f"{entry['task']:<{width}}  {entry['dataset']['split']:<10} {entry['main_metric']} = "
            f"{entry['main_score']:.4f}  ({entry['num_texts']} texts, {entry['seconds']:.1f}s, prompt {prompt})"
        )
    summary = args.summary or str(Path(args.output_folder) / SUMMARY_NAME)
    print(f"\nresults in {args.output_folder} (mteb layout); summary in {summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    mode, rest = argv[0], argv[1:]
    if mode == "sts":
        return sts_main(rest, prog="st-qwen3emb eval sts")
    if mode == "mteb":
        return mteb_main(rest, prog="st-qwen3emb eval mteb")
    print(f"st-qwen3emb eval: unknown mode {mode!r} (expected 'sts' or 'mteb')\n\n{USAGE}", file=sys.stderr)
    return 2
