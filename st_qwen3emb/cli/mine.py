"""``st-qwen3emb mine``: pairs + corpus -> a training file with mined hard negatives (``st_qwen3emb.mining``).

Bad flags or data exit 2 with one line before any model loads; the output is written to a temporary file and
renamed into place, and an existing file is only replaced with ``--overwrite``. The models are loaded here (the
reranker through ``st_qwen3emb.reranker`` for a Qwen3 model) and handed to ``st_qwen3emb.mining.write_mined``: a corpus
larger than ``--chunk_size`` is mined in chunks, and an interrupted run resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "st-qwen3emb mine"


def build_parser() -> argparse.ArgumentParser:
    from st_qwen3emb.mining import DEFAULT_CHUNK_SIZE, DEFAULT_NUM_NEGATIVES, OUTPUT_FORMATS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mine hard negatives for retrieval training (queries get the model's query prompt, documents "
        "none, as in training). Every known positive of a query is excluded from its negatives.",
    )
    add = parser.add_argument
    add("--model", required=True, help="the embedding model that ranks the corpus (folder or Hub id)")
    add("--dataset", required=True, nargs="+", help="pairs: any sft --dataset spec, e.g. a BEIR folder 'DIR:train'")
    add("--output", required=True, help="the .jsonl file to write")
    add("--corpus", help="BEIR folder or corpus.jsonl, a .jsonl with 'text', or a .txt file (default: the BEIR "
        "folder's own corpus, else the pairs' positives)")
    add("--num_negatives", type=int, default=DEFAULT_NUM_NEGATIVES, help="negatives per row (default %(default)s)")
    add("--format", choices=OUTPUT_FORMATS, default="swift4", help="row layout (default %(default)s)")
    add("--range_min", type=int, default=0, help="skip the top range_min candidates (default 0)")
    add("--range_max", type=int, default=None, help="consider candidates up to this rank")
    add("--absolute_margin", type=float, default=None, help="drop candidates scoring above positive - margin")
    add("--relative_margin", type=float, default=None, help="drop candidates scoring above positive * (1 - margin)")
    add("--max_score", type=float, default=None, help="drop candidates scoring above this (the reranker's scale "
        "with --reranker)")
    add("--sampling_strategy", choices=("top", "random"), default="top")
    add("--reranker", help="a CrossEncoder (or Qwen3-Reranker) that rescores candidates for the guards above")
    add("--scores", action="store_true", help="write each row's scores (positive first) for distill_kl/margin_mse")
    add("--batch_size", type=int, default=32)
    add("--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE, help="corpus documents in memory at once; a larger "
        "corpus is mined in chunks and the run resumes after an interruption (default %(default)s)")
    add("--max_length", type=int, default=None, help="truncation length of the model (tokens)")
    add("--split", default="train", help="split for Hub datasets / BEIR folders without ':split' (default train)")
    add("--use_faiss", choices=("auto", "true", "false"), default="auto", help="faiss search (auto: when installed)")
    add("--overwrite", "--exist_ok", action="store_true", help="replace an existing --output file")
    add("--trust_remote_code", action="store_true")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.num_negatives < 1:
        raise ValueError(f"--num_negatives must be >= 1, got {args.num_negatives}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.chunk_size < 1:
        raise ValueError(f"--chunk_size must be >= 1, got {args.chunk_size}")
    if args.range_max is not None and args.range_max <= args.range_min:
        raise ValueError(f"--range_max ({args.range_max}) must be larger than --range_min ({args.range_min})")
    if args.reranker and args.max_score is None and args.absolute_margin is None and args.relative_margin is None:
        raise ValueError("--reranker needs a threshold: --max_score, --absolute_margin or --relative_margin")
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise ValueError(f"--output {output} exists; pass --overwrite to replace it")
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder; give a .jsonl file path")
    if args.use_faiss == "true":
        import importlib.util

        if importlib.util.find_spec("faiss") is None:
            raise ValueError("--use_faiss true but faiss is not installed (pip install faiss-cpu)")


def load_any_reranker(name: str, *, max_length: int | None = None, trust_remote_code: bool = False):
    """A Qwen3 model through ``load_reranker`` (the official template), anything else as a plain ``CrossEncoder``."""
    from st_qwen3emb.model import QWEN3_MODEL_TYPES, read_model_type

    if read_model_type(name, trust_remote_code=trust_remote_code) in QWEN3_MODEL_TYPES:
        from st_qwen3emb.reranker import load_reranker

        return load_reranker(name, max_length=max_length, trust_remote_code=trust_remote_code)
    from sentence_transformers import CrossEncoder

    return CrossEncoder(name, max_length=max_length, trust_remote_code=trust_remote_code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from st_qwen3emb.data import DatasetValidationError, read_records
    from st_qwen3emb.mining import corpus_file, default_corpus, query_positives, write_mined
    from st_qwen3emb.model import ModelLoadError

    try:
        _check(args)
        positives = query_positives(read_records(args.dataset, split=args.split))
        if not positives:
            raise DatasetValidationError(f"{' '.join(args.dataset)}: no row has a query and a positive")
        corpus = corpus_file(args.corpus) if args.corpus else default_corpus(args.dataset)
        if corpus is not None:
            corpus.check()
        from st_qwen3emb.model import load_model

        model = load_model(args.model, max_seq_length=args.max_length, trust_remote_code=args.trust_remote_code)
        reranker = (
            load_any_reranker(args.reranker, max_length=args.max_length, trust_remote_code=args.trust_remote_code)
            if args.reranker
            else None
        )
    except (ValueError, DatasetValidationError, ModelLoadError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    try:
        path, summary = write_mined(
            model, positives, corpus, args.output, output_format=args.format, with_scores=args.scores,
            overwrite=args.overwrite, chunk_size=args.chunk_size, num_negatives=args.num_negatives,
            range_min=args.range_min, range_max=args.range_max, absolute_margin=args.absolute_margin,
            relative_margin=args.relative_margin, max_score=args.max_score, sampling_strategy=args.sampling_strategy,
            reranker=reranker, batch_size=args.batch_size,
            use_faiss={"auto": None, "true": True, "false": False}[args.use_faiss],
        )  # fmt: skip
    except (FileExistsError, DatasetValidationError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print("\n".join(["", *summary.lines(), f"output:                     {path}"]))
    from st_qwen3emb.commands import command
    from st_qwen3emb.losses.env import DISTILL_TEACHER_TEMPERATURE_ENV

    loss = "distill_kl" if args.scores else "infonce"
    # Without a reranker the scores are the embedder's cosines, which need a cosine-scale teacher temperature.
    env = {DISTILL_TEACHER_TEMPERATURE_ENV: 0.05} if args.scores and not args.reranker else None
    print(f"Next:\n  {command('sft', ['--model', args.model, '--dataset', path, '--loss_type', loss], env)}")
    return 0
