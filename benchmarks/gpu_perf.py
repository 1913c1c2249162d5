"""GPU throughput of a Qwen3-Embedding-0.6B-shaped random model: training tokens/s and encoding texts/s, bf16, one GPU.

What it measures (each in its own Python process, so one failing option does not stop the others):

- **training**: ``st-qwen3emb sft`` (``--bf16 true --torch_dtype bfloat16``, ``--max_steps`` steps) with
  ``cosine_similarity`` (batch 32) and ``infonce`` (batch 64, in-batch negatives), under each attention option
  that is installed: ``sdpa``; ``flash_attention_2`` when ``flash_attn`` imports; ``sdpa`` + Liger kernels
  (``--use_liger_kernel true``) when ``liger_kernel`` imports. Throughput is steady state: the first
  ``--warmup-steps`` optimizer steps (CUDA start-up, autotuning) are left out; tokens are the real (non-pad) tokens
  of the rows a step consumes. Also the peak GPU memory and the losses (finite, to show the run trained).
- **encoding**: ``st_qwen3emb.load_model(folder, dtype=bfloat16, attn_implementation=...)`` then ``encode`` of
  generated texts at batch 64 and 128, median of ``--repeats`` runs after a warm-up; texts/s and tokens/s.

The model is built locally with ``st_qwen3emb.fixtures.build_qwen3_checkpoint`` (hidden 1024, 28 layers, 16 heads,
8 KV heads, MLP 3072; the skeleton's real tokenizer when ``ST_QWEN3EMB_SKELETON`` or ``../shared`` has it, else
the fallback tokenizer) and saved as a sentence-transformers folder; the texts are generated from a fixed seed.
Nothing is downloaded. A total time budget (``--budget-s``, default 270 s on the GPU) skips what would not fit
in ~5 minutes.

Writes a JSON (``--out``) and prints a table. ``--smoke`` runs everything on the CPU at a tiny size (fp32,
a few steps) to check this script itself.

    bash benchmarks/gpu_perf.sh                                  # on the GPU machine (JSON under $OUT)
    python benchmarks/gpu_perf.py --smoke --out /tmp/gpu_perf_smoke.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]  # this checkout's package, uninstalled or not, and the sibling script
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded, also where a network is reachable
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from gpu_check_deepspeed import SHAPE, SMOKE_SHAPE  # noqa: E402  (one place for the 0.6B shape)

# loss -> per-device batch size on the GPU (the smoke run uses 4)
LOSSES = {"cosine_similarity": 32, "infonce": 64}
WORDS = (
    "the model river quickly learns a small green house under every bright cloud while old friends walk near "
    "quiet streets and children read long stories about distant mountains that rise above silent lakes in winter"
).split()


def sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def write_train_data(path: Path, rows: int, seed: int, with_label: bool) -> list[tuple[str, str]]:
    """Query-like anchors (8-24 words) and passage-like positives (40-120 words), fixed seed."""
    rng = random.Random(seed)
    pairs = [(sentence(rng, rng.randint(8, 24)), sentence(rng, rng.randint(40, 120))) for _ in range(rows)]
    with path.open("w", encoding="utf-8") as f:
        for anchor, positive in pairs:
            row = {"anchor": anchor, "positive": positive}
            if with_label:
                row["label"] = round(rng.random(), 3)
            f.write(json.dumps(row) + "\n")
    return pairs


def encode_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng, rng.randint(5, 150)) for _ in range(n)]


def attention_options(smoke: bool) -> list[tuple[str, str, bool]]:
    """(label, attn_implementation, liger) for each option installed here."""
    options = [("sdpa", "sdpa", False)]
    if smoke:
        return options
    if importlib.util.find_spec("flash_attn") is not None:
        options.append(("flash_attention_2", "flash_attention_2", False))
    if importlib.util.find_spec("liger_kernel") is not None:
        options.append(("sdpa+liger", "sdpa", True))
    return options


# --- workers (run in a fresh process each) ---------------------------------------------------------------
def worker_train(report: Path, sft_args: list[str]) -> int:
    """Run ``st-qwen3emb sft`` here, timing every optimizer step and reading the peak GPU memory."""
    import torch
    from transformers import trainer_callback

    from st_qwen3emb.cli import main as cli_main

    step_times: list[float] = []
    losses: list[float] = []
    handler = trainer_callback.CallbackHandler
    orig_step, orig_log = handler.on_step_end, handler.on_log

    def on_step_end(self, args, state, control):
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # the step's kernels are done, so the clock sees the real step time
        step_times.append(time.perf_counter())
        return orig_step(self, args, state, control)

    def on_log(self, args, state, control, logs):
        if "loss" in logs:
            losses.append(float(logs["loss"]))
        return orig_log(self, args, state, control, logs)

    handler.on_step_end, handler.on_log = on_step_end, on_log
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    rc = cli_main(["sft", *sft_args])
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    report.write_text(json.dumps({"rc": rc, "step_times": step_times, "losses": losses, "peak_gpu_mem_gib": peak}))
    return int(rc or 0)


def worker_encode(report: Path, folder: str, attn: str, device: str, dtype: str, batch_sizes: list[int],
                  n_texts: int, repeats: int) -> int:
    import torch

    from st_qwen3emb import load_model

    model = load_model(folder, device=device, dtype=getattr(torch, dtype), attn_implementation=attn)
    texts = encode_texts(n_texts, seed=1)
    n_tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
    results = {}
    for batch_size in batch_sizes:
        model.encode(texts[: 2 * batch_size], batch_size=batch_size)  # warm-up: kernels, allocator
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            emb = model.encode(texts, batch_size=batch_size)  # returns numpy: the GPU work is finished
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        results[str(batch_size)] = {
            "texts_per_s": len(texts) / median, "tokens_per_s": n_tokens / median, "seconds": times,
            "peak_gpu_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
            "finite": bool(torch.isfinite(torch.as_tensor(emb).float()).all()),
        }
    report.write_text(json.dumps({"num_texts": len(texts), "num_tokens": n_tokens, "results": results}))
    return 0


# --- orchestration -----------------------------------------------------------------------------------------
def build_model(workdir: Path, shape: dict) -> Path:
    from st_qwen3emb import load_model
    from st_qwen3emb.fixtures import build_qwen3_checkpoint

    st_folder = workdir / "model_st"
    if not (st_folder / "modules.json").is_file():
        bare = build_qwen3_checkpoint(workdir / "model_bare", seed=0, **shape)
        load_model(str(bare)).save(str(st_folder))
    return st_folder


def row_tokens(folder: Path, pairs: list[tuple[str, str]], max_length: int) -> float:
    """Mean real tokens per training row (anchor + positive, EOS included), as the trainer tokenises them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    texts = [t for pair in pairs for t in pair]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    return sum(lengths) / len(pairs)


def run_worker(args: list[str], log: Path, timeout: float) -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    try:
        with log.open("w") as fh:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], stdout=fh,
                                  stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
                                  timeout=None if math.isinf(timeout) else max(timeout, 1))
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = 124
    return rc, log.read_text(errors="replace")[-2000:]


def steady_rate(step_times: list[float], warmup: int) -> tuple[float | None, int]:
    """Optimizer steps per second after the first ``warmup`` steps (None when too few steps were timed)."""
    timed = step_times[warmup:] if len(step_times) > warmup + 1 else step_times
    if len(timed) < 2:
        return None, 0
    return (len(timed) - 1) / (timed[-1] - timed[0]), len(timed) - 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_train"]:
        return worker_train(Path(argv[1]), argv[3:])  # _train REPORT -- SFT ARGS
    if argv[:1] == ["_encode"]:
        report, folder, attn, device, dtype, batches, n_texts, repeats = argv[1:9]
        return worker_encode(Path(report), folder, attn, device, dtype, [int(b) for b in batches.split(",")],
                             int(n_texts), int(repeats))

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny model, fp32, a few steps: checks the script")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per training run (GPU: 40)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="steps left out of the rate (GPU: 5)")
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES))
    parser.add_argument("--encode-texts", type=int, default=None, help="texts per encode run (GPU: 4096)")
    parser.add_argument("--encode-batch-sizes", type=int, nargs="+", default=None, help="GPU: 64 128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip runs that would start after this many seconds (GPU: 270; smoke: no limit)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu_perf.json")
    parser.add_argument("--sft-args", nargs=argparse.REMAINDER, default=[],
                        help="extra st-qwen3emb sft flags for every training run (last on the line)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    import torch

    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        print("gpu_perf: no CUDA device; use --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    device = "cpu" if smoke else "cuda"
    shape = SMOKE_SHAPE if smoke else SHAPE
    steps = args.steps or (3 if smoke else 40)
    warmup = args.warmup_steps if args.warmup_steps is not None else (0 if smoke else 5)
    n_texts = args.encode_texts or (32 if smoke else 4096)
    batch_sizes = args.encode_batch_sizes or ([8, 16] if smoke else [64, 128])
    repeats = 1 if smoke else args.repeats
    budget_s = args.budget_s if args.budget_s is not None else (math.inf if smoke else 270.0)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu_perf_"))
    workdir.mkdir(parents=True, exist_ok=True)

    folder = build_model(workdir, shape)
    environment = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__, "shape": shape, "smoke": smoke,
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
        "liger_kernel": importlib.util.find_spec("liger_kernel") is not None,
    }
    print(json.dumps(environment), flush=True)
    report: dict = {"environment": environment, "training": [], "encoding": []}

    def out_of_time() -> bool:
        return time.perf_counter() - t0 > budget_s

    for loss in args.losses:
        batch = 4 if smoke else LOSSES[loss]
        rows = batch * (steps + 2)
        data = workdir / f"train_{loss}.jsonl"
        pairs = write_train_data(data, rows, seed=0, with_label=loss == "cosine_similarity")
        tokens_per_row = row_tokens(folder, pairs, args.max_length)
        for label, attn, liger in attention_options(smoke):
            entry = {"loss": loss, "attention": label, "batch_size": batch, "steps": steps, "warmup_steps": warmup,
                     "tokens_per_row": tokens_per_row}
            report["training"].append(entry)
            if out_of_time():
                entry["status"] = "skipped (time budget)"
                continue
            run_dir = workdir / f"run_{loss}_{label}"
            sft = ["--model", str(folder), "--dataset", str(data), "--loss_type", loss,
                   "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", "1",
                   "--max_steps", str(steps), "--learning_rate", "1e-5", "--max_length", str(args.max_length),
                   "--output_dir", str(run_dir), "--save_strategy", "no", "--eval_strategy", "no",
                   "--report_to", "none", "--logging_steps", "1", "--dataloader_drop_last", "true",
                   "--seed", "42", "--attn_impl", attn]
            sft += ["--use_cpu", "true"] if smoke else ["--bf16", "true", "--torch_dtype", "bfloat16"]
            if liger:
                sft += ["--use_liger_kernel", "true"]
            sft += args.sft_args
            worker_report = workdir / f"train_{loss}_{label}.json"
            rc, tail = run_worker(["_train", str(worker_report), "--", *sft], workdir / f"train_{loss}_{label}.log",
                                  budget_s - (time.perf_counter() - t0) + 60)
            if rc != 0 or not worker_report.is_file():
                entry.update(status=f"failed (exit {rc})", log_tail=tail)
                continue
            result = json.loads(worker_report.read_text())
            rate, timed = steady_rate(result["step_times"], warmup)
            entry.update(
                status="ok", timed_steps=timed, steps_per_s=rate,
                samples_per_s=rate * batch if rate else None,
                tokens_per_s=rate * batch * tokens_per_row if rate else None,
                peak_gpu_mem_gib=result["peak_gpu_mem_gib"], losses=result["losses"],
                losses_finite=bool(result["losses"]) and all(math.isfinite(x) for x in result["losses"]),
            )

    for label, attn, liger in attention_options(smoke):
        if liger:
            continue  # Liger patches training kernels; encoding is the same as without it
        entry = {"attention": label, "dtype": "float32" if smoke else "bfloat16"}
        report["encoding"].append(entry)
        if out_of_time():
            entry["status"] = "skipped (time budget)"
            continue
        worker_report = workdir / f"encode_{label}.json"
        rc, tail = run_worker(
            ["_encode", str(worker_report), str(folder), attn, device, entry["dtype"],
             ",".join(map(str, batch_sizes)), str(n_texts), str(repeats)],
            workdir / f"encode_{label}.log", budget_s - (time.perf_counter() - t0) + 60,
        )
        if rc != 0 or not worker_report.is_file():
            entry.update(status=f"failed (exit {rc})", log_tail=tail)
            continue
        entry.update(status="ok", **json.loads(worker_report.read_text()))

    report["total_s"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"JSON: {args.out}  ({report['total_s']:.0f} s)")
    ok = [e for e in report["training"] + report["encoding"] if e.get("status") == "ok"]
    return 0 if ok and all(e.get("losses_finite", True) for e in ok) else 1


def print_table(report: dict) -> None:
    def fmt(value, spec=".0f"):
        return "-" if value is None else format(value, spec)

    print("\n| training | attention | batch | samples/s | tokens/s | peak GiB | status |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for e in report["training"]:
        print(f"| {e['loss']} | {e['attention']} | {e['batch_size']} | {fmt(e.get('samples_per_s'), '.1f')} | "
              f"{fmt(e.get('tokens_per_s'))} | {fmt(e.get('peak_gpu_mem_gib'), '.1f')} | {e.get('status')} |")
    print("\n| encoding | batch | texts/s | tokens/s | peak GiB | status |")
    print("| --- | --- | --- | --- | --- | --- |")
    for e in report["encoding"]:
        for batch, r in (e.get("results") or {"-": {}}).items():
            print(f"| {e['attention']} ({e['dtype']}) | {batch} | {fmt(r.get('texts_per_s'), '.1f')} | "
                  f"{fmt(r.get('tokens_per_s'))} | {fmt(r.get('peak_gpu_mem_gib'), '.1f')} | {e.get('status')} |")


if __name__ == "__main__":
    sys.exit(main())
