"""Training throughput: st-qwen3emb sft vs plain sentence-transformers vs ms-swift, on the same work.

The same Qwen3 model (built from the skeleton config: hidden 256, 4 layers, the real tokenizer, fixed seed),
the same STS-B rows and the same hyperparameters (cosine_similarity, batch 8, accumulation 2, lr 6e-6, one
epoch over 2,000 rows; the infonce variant uses batch 32 on the pairs with score >= 3.75) are trained by

  (a) ``st-qwen3emb sft``                       (ours)
  (b) a plain ``SentenceTransformerTrainer`` script   (``benchmarks/plain_st_train.py``)
  (c) ms-swift 4.6 ``swift sft``               (only with ``--swift-python PATH``, a Python that has ms-swift)

each in a fresh process wrapped by ``benchmarks/_probe.py``, alternating implementations run by run. The table
reports medians of samples/s and tokens/s (over the training loop), seconds from process start to the first
optimizer step, total wall time and peak RSS, and the ratios of ours to each baseline. Run it on an idle
machine: the ratios are what matter, and they are taken in the same run.

    python benchmarks/bench_train.py --swift-python /tmp/swiftenv/bin/python --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_STSB = REPO.parent / "shared" / "data" / "stsb" / "train.tsv"

VARIANTS = {
    # name: (loss, batch size, gradient accumulation, row filter, logging steps: about 10 logged losses to compare)
    "cosine": ("cosine_similarity", 8, 2, None, 10),
    "infonce": ("infonce", 32, 1, 3.75, 2),
}


def prepare(workdir: Path, stsb: Path, rows: int, hidden: int, layers: int) -> dict[str, Path]:
    """Build the model (bare checkpoint + ST folder) and the data files once; every run reads these."""
    from st_qwen3emb import load_model
    from st_qwen3emb.fixtures import build_qwen3_checkpoint

    bare = workdir / "model_bare"
    st_folder = workdir / "model_st"
    if not (st_folder / "modules.json").is_file():
        build_qwen3_checkpoint(bare, hidden_size=hidden, num_layers=layers, num_heads=4, num_kv_heads=2, seed=0)
        load_model(str(bare)).save(str(st_folder))
    with open(stsb, encoding="utf-8") as f:
        table = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:rows]
    files = {"bare": bare, "st": st_folder}
    for name, (_, _, _, min_score, _) in VARIANTS.items():
        path = workdir / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for row in table:
                score = float(row["score"])
                if min_score is not None and score < min_score:
                    continue
                # swift 4.x rows: ms-swift 4.6 no longer maps the 3.x query/response keys for embeddings
                record = {"messages": [{"role": "user", "content": row["sentence1"]}],
                          "positive_messages": [[{"role": "user", "content": row["sentence2"]}]]}
                if min_score is None:
                    record["label"] = score / 5.0
                f.write(json.dumps(record) + "\n")
        files[name] = path
    return files


def count_tokens(model_dir: Path, data: Path) -> tuple[int, int]:
    """Rows and real (non-pad) tokens the epoch trains on, with the model's tokenizer (EOS included)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    rows = [json.loads(line) for line in open(data, encoding="utf-8")]
    texts = [r["messages"][0]["content"] for r in rows] + [r["positive_messages"][0][0]["content"] for r in rows]
    return len(rows), sum(len(ids) for ids in tokenizer(texts)["input_ids"])


def commands(impl: str, variant: str, files: dict[str, Path], out: Path, swift_python: str | None) -> list[str] | None:
    loss, batch, accum, _, log_steps = VARIANTS[variant]
    common = ["--num_train_epochs", "1", "--learning_rate", "6e-6", "--seed", "42"]
    probe = [str(HERE / "_probe.py"), str(out / "report.json")]
    if impl == "ours":
        return [sys.executable, *probe, "-m", "st_qwen3emb.cli", "sft", "--model", str(files["st"]),
                "--dataset", str(files[variant]), "--loss_type", loss, "--per_device_train_batch_size", str(batch),
                "--gradient_accumulation_steps", str(accum), "--output_dir", str(out / "run"), "--max_length", "512",
                "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--logging_steps", str(log_steps),
                "--dataloader_drop_last", "true", "--query_instruction", "", "--document_instruction", "",
                *common]  # bare text on both sides: the inputs ms-swift and the plain script train on
    if impl == "plain":
        return [sys.executable, *probe, str(HERE / "plain_st_train.py"), "--model", str(files["st"]),
                "--data", str(files[variant]), "--loss", loss, "--batch_size", str(batch),
                "--gradient_accumulation_steps", str(accum), "--output_dir", str(out / "run"), "--max_seq_length", "512",
                "--num_train_epochs", "1", "--learning_rate", "6e-6", "--seed", "42",
                "--logging_steps", str(log_steps)]
    if impl == "swift" and swift_python:
        return [swift_python, *probe, "-m", "swift.cli.sft", "--model", str(files["bare"]), "--task_type", "embedding",
                "--model_type", "qwen3_emb", "--tuner_type", "full", "--dataset", str(files[variant]),
                "--loss_type", loss, "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps",
                str(accum), "--output_dir", str(out / "run"), "--max_length", "512", "--torch_dtype", "float32",
                "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--logging_steps", str(log_steps),
                "--dataloader_drop_last", "true", "--split_dataset_ratio", "0", "--dataset_num_proc", "1",
                "--load_from_cache_file", "false", *common]
    return None


def run_once(cmd: list[str], out: Path, env: dict[str, str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    if proc.returncode != 0:
        tail = (out / "log.txt").read_text()[-3000:]
        raise RuntimeError(f"{cmd[:6]} failed with exit code {proc.returncode}:\n{tail}")
    return json.loads((out / "report.json").read_text())


def loss_curve(impl: str, out: Path) -> dict[int, float]:
    """Logged training loss by optimizer step (ours: logging.jsonl, plain: the trainer's log history)."""
    if impl == "ours":
        log = next((out / "run").glob("v*/logging.jsonl"))
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return {int(r["global_step/max_steps"].split("/")[0]): float(r["loss"]) for r in records if "loss" in r}
    if impl == "plain":
        history = json.loads((out / "run" / "log_history.json").read_text())
        return {int(r["step"]): float(r["loss"]) for r in history if "loss" in r}
    return {}


def compare_curves(ours: dict[int, float], plain: dict[int, float]) -> dict | None:
    """Correctness first: the fast path's loss curve against the plain path's, same seed, same data order."""
    steps = sorted(set(ours) & set(plain))
    if not steps:
        return None
    rel = [abs(ours[s] - plain[s]) / max(abs(plain[s]), 1e-12) for s in steps]
    return {"steps": steps, "ours": [ours[s] for s in steps], "plain": [plain[s] for s in steps],
            "max_relative_difference": max(rel)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swift-python", help="a Python interpreter with ms-swift 4.6 installed")
    parser.add_argument("--stsb", type=Path, default=DEFAULT_STSB, help="STS-B train TSV (sentence1, sentence2, score)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--impls", nargs="+", choices=["ours", "plain", "swift"], default=["ours", "plain", "swift"])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "bench_train.json")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    workdir.mkdir(parents=True, exist_ok=True)
    files = prepare(workdir, args.stsb, args.rows, args.hidden, args.layers)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    impls = [i for i in args.impls if i != "swift" or args.swift_python]

    results: dict[str, dict] = {}
    for variant in args.variants:
        n_rows, n_tokens = count_tokens(files["st"], files[variant])
        runs: dict[str, list[dict]] = {impl: [] for impl in impls}
        for repeat in range(args.repeats):
            order = impls if repeat % 2 == 0 else list(reversed(impls))  # alternate to spread drift evenly
            for impl in order:
                out = workdir / "runs" / f"{variant}-{impl}-{repeat}"
                report = run_once(commands(impl, variant, files, out, args.swift_python), out, env)
                report["samples_per_s"] = n_rows / report["train_s"]
                report["tokens_per_s"] = n_tokens / report["train_s"]
                runs[impl].append(report)
                print(f"{variant:8s} {impl:6s} run {repeat}: {report['samples_per_s']:.1f} samples/s, "
                      f"first step {report['start_to_first_step_s']:.1f} s, wall {report['wall_s']:.1f} s, "
                      f"peak {report['peak_rss_mib']:.0f} MiB", flush=True)
        curves = None
        if {"ours", "plain"} <= set(impls):
            first = {impl: loss_curve(impl, workdir / "runs" / f"{variant}-{impl}-0") for impl in ("ours", "plain")}
            curves = compare_curves(first["ours"], first["plain"])
            if curves:
                print(f"{variant}: loss curves of ours and plain differ by at most "
                      f"{curves['max_relative_difference']:.2e} (relative) over {len(curves['steps'])} logged steps")
        medians = {
            impl: {key: statistics.median(r[key] for r in reports) for key in
                   ("samples_per_s", "tokens_per_s", "start_to_first_step_s", "wall_s", "peak_rss_mib")}
            for impl, reports in runs.items()
        }
        ratios = {}
        for base in (i for i in impls if i != "ours"):
            if "ours" in medians:
                ratios[f"ours/{base}"] = {
                    "samples_per_s": medians["ours"]["samples_per_s"] / medians[base]["samples_per_s"],
                    "start_to_first_step_s": medians["ours"]["start_to_first_step_s"]
                    / medians[base]["start_to_first_step_s"],
                    "peak_rss_mib": medians["ours"]["peak_rss_mib"] / medians[base]["peak_rss_mib"],
                }
        results[variant] = {"rows": n_rows, "tokens": n_tokens, "medians": medians, "ratios": ratios,
                            "loss_curves": curves, "runs": runs}
        print(json.dumps({"variant": variant, "medians": medians, "ratios": ratios}, indent=2), flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                      indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
